package config

import (
	"net/netip"
	"time"
)

// Mode is the proxy data-plane mode named in the configuration.
type Mode string

// The modes fjord accepts.
const (
	ModeIPVS     Mode = "ipvs"
	ModeNFTables Mode = "nftables"
	ModeIPTables Mode = "iptables"
)

// Schedulers returns the accepted ipvs.scheduler values in the order error
// messages name them. An empty scheduler means the default, "rr".
func Schedulers() []string {
	return []string{"rr", "wrr", "lc", "wlc", "sh", "random", "maglev"}
}

// Config is the effective configuration after defaults and validation.
type Config struct {
	// Mode is the configured mode; an empty mode defaults to iptables as in
	// kube-proxy.
	Mode Mode
	// Scheduler is the endpoint scheduler. In ipvs mode it is
	// ipvs.scheduler (default "rr"). In iptables and nftables modes
	// kube-proxy picks endpoints at random, so it is "random".
	Scheduler string
	// SyncPeriod is the periodic full-resync interval of the selected
	// mode's section; absent or "0s" means the default, 30s, as in
	// kube-proxy.
	SyncPeriod time.Duration
	// MinSyncPeriod is the minimum time between syncs of the selected
	// mode's section; 0 means sync on every change. As in kube-proxy, an
	// absent or zero value means 0 for ipvs and 1s for iptables and
	// nftables.
	MinSyncPeriod time.Duration
	// ExcludeCIDRs are ipvs.excludeCIDRs: addresses cleanup must not touch.
	ExcludeCIDRs []netip.Prefix
	// StrictARP is ipvs.strictARP.
	StrictARP bool
	// MasqueradeAll is the selected mode's masqueradeAll (false for ipvs,
	// whose section has no such field).
	MasqueradeAll bool
	// ClusterCIDR is clusterCIDR split on commas (dual-stack clusters list
	// one prefix per family); nil when unset.
	ClusterCIDR []netip.Prefix
	// NodePortAddresses are the CIDRs of nodePortAddresses, with the
	// keywords "localhost" and "all" expanded to their IPv4 and IPv6
	// prefixes. Unset means "all" in iptables and ipvs mode and "primary"
	// in nftables mode, as in kube-proxy.
	NodePortAddresses []netip.Prefix
	// NodePortPrimary is true when NodePorts are served on the node's
	// primary IPs (the "primary" keyword, or the nftables default).
	NodePortPrimary bool
	// DetectLocalMode is detectLocalMode as written ("" when unset).
	DetectLocalMode string
	// FeatureGates is a copy of featureGates.
	FeatureGates map[string]bool
	// Raw is the decoded document, for fields fjord does not interpret.
	Raw KubeProxyConfiguration
}

// ConfigSyncPeriod is configSyncPeriod: how often the informers replay their caches.
// Unset or 0s means kube-proxy's default, 15 minutes.
func (c *Config) ConfigSyncPeriod() time.Duration {
	if p := c.Raw.ConfigSyncPeriod; p != nil && p.Duration > 0 {
		return p.Duration
	}
	return 15 * time.Minute
}

// Sysctl is one kernel setting under /proc/sys (Path relative to it, e.g.
// "net/netfilter/nf_conntrack_tcp_timeout_close_wait").
type Sysctl struct {
	Path  string
	Value int
	// RaiseOnly: write only when the current value is lower (nf_conntrack_max:
	// kube-proxy never shrinks the table).
	RaiseOnly bool
}

// ConntrackSysctls is what kube-proxy makes of the conntrack section, with its
// defaults (maxPerCore 32768, min 131072, tcpEstablishedTimeout 24h,
// tcpCloseWaitTimeout 1h): an explicit 0 leaves a setting alone, as kube-proxy does.
func (c *Config) ConntrackSysctls(cpus int) []Sysctl {
	ct := c.Raw.Conntrack
	const nf = "net/netfilter/"
	var out []Sysctl
	perCore, min := int32(32768), int32(131072)
	if ct.MaxPerCore != nil {
		perCore = *ct.MaxPerCore
	}
	if ct.Min != nil {
		min = *ct.Min
	}
	if perCore > 0 {
		out = append(out, Sysctl{Path: nf + "nf_conntrack_max", Value: max(int(perCore)*cpus, int(min)), RaiseOnly: true})
	}
	seconds := func(d *Duration, def time.Duration) int {
		if d == nil {
			return int(def / time.Second)
		}
		return int(d.Duration / time.Second)
	}
	if s := seconds(ct.TCPEstablishedTimeout, 24*time.Hour); s > 0 {
		out = append(out, Sysctl{Path: nf + "nf_conntrack_tcp_timeout_established", Value: s})
	}
	if s := seconds(ct.TCPCloseWaitTimeout, time.Hour); s > 0 {
		out = append(out, Sysctl{Path: nf + "nf_conntrack_tcp_timeout_close_wait", Value: s})
	}
	if ct.TCPBeLiberal {
		out = append(out, Sysctl{Path: nf + "nf_conntrack_tcp_be_liberal", Value: 1})
	}
	if s := seconds(ct.UDPTimeout, 0); s > 0 {
		out = append(out, Sysctl{Path: nf + "nf_conntrack_udp_timeout", Value: s})
	}
	if s := seconds(ct.UDPStreamTimeout, 0); s > 0 {
		out = append(out, Sysctl{Path: nf + "nf_conntrack_udp_timeout_stream", Value: s})
	}
	return out
}
