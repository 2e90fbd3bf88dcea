package config

// KubeProxyConfiguration mirrors the upstream
// k8s.io/kube-proxy/config/v1alpha1 KubeProxyConfiguration wire format.
// Only the json tags matter to the strict decoder: every key a document may
// contain must appear here, and nothing else is accepted.
//
// Pointer fields distinguish "absent" from a zero value so that defaults can
// be applied the way kube-proxy applies them.
type KubeProxyConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	FeatureGates map[string]bool `json:"featureGates,omitempty"`

	ClientConnection ClientConnection `json:"clientConnection"`
	Logging          Logging          `json:"logging"`

	HostnameOverride            string `json:"hostnameOverride"`
	BindAddress                 string `json:"bindAddress"`
	HealthzBindAddress          string `json:"healthzBindAddress"`
	MetricsBindAddress          string `json:"metricsBindAddress"`
	BindAddressHardFail         bool   `json:"bindAddressHardFail"`
	EnableProfiling             bool   `json:"enableProfiling"`
	ShowHiddenMetricsForVersion string `json:"showHiddenMetricsForVersion"`

	Mode      string    `json:"mode"`
	IPTables  IPTables  `json:"iptables"`
	IPVS      IPVS      `json:"ipvs"`
	NFTables  NFTables  `json:"nftables"`
	Winkernel Winkernel `json:"winkernel"`

	DetectLocalMode string      `json:"detectLocalMode"`
	DetectLocal     DetectLocal `json:"detectLocal"`

	ClusterCIDR         string    `json:"clusterCIDR"`
	NodePortAddresses   []string  `json:"nodePortAddresses"`
	OOMScoreAdj         *int32    `json:"oomScoreAdj"`
	Conntrack           Conntrack `json:"conntrack"`
	ConfigSyncPeriod    *Duration `json:"configSyncPeriod"`
	PortRange           string    `json:"portRange"`
	WindowsRunAsService bool      `json:"windowsRunAsService,omitempty"`
}

// ClientConnection mirrors componentbase ClientConnectionConfiguration.
type ClientConnection struct {
	Kubeconfig         string  `json:"kubeconfig"`
	AcceptContentTypes string  `json:"acceptContentTypes"`
	ContentType        string  `json:"contentType"`
	QPS                float32 `json:"qps"`
	Burst              int32   `json:"burst"`
}

// Logging mirrors component-base LoggingConfiguration. fjord does not
// interpret it; it is accepted so that real configs parse. FlushFrequency
// upstream accepts either a duration string or integer nanoseconds, and
// Options is format-specific, so both are taken as opaque values.
type Logging struct {
	Format         string        `json:"format"`
	FlushFrequency any           `json:"flushFrequency"`
	Verbosity      uint32        `json:"verbosity"`
	VModule        []VModuleItem `json:"vmodule"`
	Options        any           `json:"options"`
}

// VModuleItem is one per-file verbosity override.
type VModuleItem struct {
	FilePattern string `json:"filePattern"`
	Verbosity   uint32 `json:"verbosity"`
}

// IPTables mirrors KubeProxyIPTablesConfiguration.
type IPTables struct {
	MasqueradeBit      *int32    `json:"masqueradeBit"`
	MasqueradeAll      bool      `json:"masqueradeAll"`
	LocalhostNodePorts *bool     `json:"localhostNodePorts"`
	SNATNodeInternalIP *bool     `json:"snatNodeInternalIP"`
	SyncPeriod         *Duration `json:"syncPeriod"`
	MinSyncPeriod      *Duration `json:"minSyncPeriod"`
}

// IPVS mirrors KubeProxyIPVSConfiguration.
type IPVS struct {
	SyncPeriod    *Duration `json:"syncPeriod"`
	MinSyncPeriod *Duration `json:"minSyncPeriod"`
	Scheduler     string    `json:"scheduler"`
	ExcludeCIDRs  []string  `json:"excludeCIDRs"`
	StrictARP     bool      `json:"strictARP"`
	TCPTimeout    *Duration `json:"tcpTimeout"`
	TCPFinTimeout *Duration `json:"tcpFinTimeout"`
	UDPTimeout    *Duration `json:"udpTimeout"`
}

// NFTables mirrors KubeProxyNFTablesConfiguration.
type NFTables struct {
	MasqueradeBit *int32    `json:"masqueradeBit"`
	MasqueradeAll bool      `json:"masqueradeAll"`
	SyncPeriod    *Duration `json:"syncPeriod"`
	MinSyncPeriod *Duration `json:"minSyncPeriod"`
}

// Winkernel mirrors KubeProxyWinkernelConfiguration; accepted, ignored.
type Winkernel struct {
	NetworkName           string `json:"networkName"`
	SourceVip             string `json:"sourceVip"`
	EnableDSR             bool   `json:"enableDSR"`
	RootHnsEndpointName   string `json:"rootHnsEndpointName"`
	ForwardHealthCheckVip bool   `json:"forwardHealthCheckVip"`
}

// DetectLocal mirrors DetectLocalConfiguration.
type DetectLocal struct {
	BridgeInterface     string `json:"bridgeInterface"`
	InterfaceNamePrefix string `json:"interfaceNamePrefix"`
}

// Conntrack mirrors KubeProxyConntrackConfiguration.
type Conntrack struct {
	MaxPerCore            *int32    `json:"maxPerCore"`
	Min                   *int32    `json:"min"`
	TCPEstablishedTimeout *Duration `json:"tcpEstablishedTimeout"`
	TCPCloseWaitTimeout   *Duration `json:"tcpCloseWaitTimeout"`
	TCPBeLiberal          bool      `json:"tcpBeLiberal"`
	UDPTimeout            *Duration `json:"udpTimeout"`
	UDPStreamTimeout      *Duration `json:"udpStreamTimeout"`
}
