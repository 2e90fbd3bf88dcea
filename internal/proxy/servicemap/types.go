package servicemap

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Protocol is a Service port's transport protocol.
type Protocol string

// The protocols a Service port may use.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Annotations fjord reads on a Service.
const (
	SchedulerAnnotation = "fjord.dev/scheduler"
	// ServiceProxyNameLabel hands a Service to another proxy: kube-proxy, and fjord,
	// leave Services carrying it alone.
	ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
	// HeadlessLabel marks a Service that no proxy may serve, whatever its cluster IP.
	HeadlessLabel     = "service.kubernetes.io/headless"
	WeightsAnnotation = "fjord.dev/weights"
)

// DefaultAffinityTimeoutSeconds is the ClientIP affinity timeout when the
// Service does not set one (as in Kubernetes).
const DefaultAffinityTimeoutSeconds = 10800

// MaxWeight is the largest endpoint weight (as in IPVS).
const MaxWeight = 65535

// Options tune Build.
type Options struct {
	// NodeName is this node's name; endpoints on it are IsLocal.
	NodeName string
	// DefaultScheduler applies to Services without a valid scheduler
	// annotation. Empty means "random" (kube-proxy's nftables behaviour).
	DefaultScheduler string
	// NodeZone is this node's topology.kubernetes.io/zone label ("" unknown), for
	// endpoints' zone hints (trafficDistribution PreferSameZone, topology-aware
	// routing).
	NodeZone string
}

// Map is the result of Build.
type Map struct {
	// Ports holds one ServicePort per (Service, port), keyed by Key().
	Ports map[string]ServicePort
	// Problems lists what Build skipped or defaulted, sorted.
	Problems []Problem
}

// Keys returns the keys of m.Ports, sorted.
func (m Map) Keys() []string {
	keys := make([]string, 0, len(m.Ports))
	for k := range m.Ports {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Problem is an object or value Build could not use.
type Problem struct {
	// Object is "Service ns/name" or "EndpointSlice ns/name".
	Object string
	// Field is the field path, e.g. "metadata.annotations[fjord.dev/weights]".
	Field string
	// Message says what was wrong and what Build did instead.
	Message string
}

func (p Problem) String() string {
	return p.Object + ": " + p.Field + ": " + p.Message
}

// SessionAffinity is a Service's session affinity.
type SessionAffinity struct {
	// ClientIP is true for sessionAffinity: ClientIP.
	ClientIP bool
	// TimeoutSeconds is the affinity timeout (set when ClientIP is).
	TimeoutSeconds int32
}

// ServicePort is one port of one Service with its endpoints. All slices are
// sorted and may be compared with Equal.
type ServicePort struct {
	Namespace string
	Name      string
	// PortName is the Service port's name ("" for a single unnamed port).
	PortName string
	Protocol Protocol

	// ClusterIPs are the Service's cluster IPs (one per IP family).
	ClusterIPs []netip.Addr
	Port       uint16
	// NodePort is 0 unless the Service is of type NodePort or
	// LoadBalancer and has one allocated.
	NodePort        uint16
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr

	SessionAffinity SessionAffinity
	// InternalTrafficPolicyLocal is internalTrafficPolicy: Local.
	InternalTrafficPolicyLocal bool
	// ExternalTrafficPolicyLocal is externalTrafficPolicy: Local. It only
	// matters when the port is externally reachable (ExternallyAccessible).
	ExternalTrafficPolicyLocal bool
	// HealthCheckNodePort is spec.healthCheckNodePort of a LoadBalancer
	// Service with externalTrafficPolicy Local (0 otherwise): where this
	// node answers load balancers whether it has local endpoints.
	HealthCheckNodePort uint16

	// Scheduler is one of sched.Names().
	Scheduler string
	// UserspacePort is set by the caller (not Build) when a userspace
	// proxy on this node serves the port (lc and wlc need per-connection
	// state nftables does not have); 0 means the kernel dispatches.
	UserspacePort uint16

	// Endpoints are the ready or serving endpoints, sorted by IP and port.
	Endpoints []Endpoint
	// TriggerTime is the latest endpoints.kubernetes.io/last-change-trigger-time
	// of the Service's EndpointSlices (Kubernetes' EndpointSlice controller
	// sets it), the zero Time without one. It is informational: Equal
	// ignores it.
	TriggerTime time.Time
}

// Key identifies a ServicePort: "ns/name:portname/PROTO".
func (sp *ServicePort) Key() string {
	return Key(sp.Namespace, sp.Name, sp.PortName, sp.Protocol)
}

// Key builds a ServicePort key from its parts.
func Key(namespace, name, portName string, proto Protocol) string {
	var b strings.Builder
	b.Grow(len(namespace) + len(name) + len(portName) + len(proto) + 3)
	b.WriteString(namespace)
	b.WriteByte('/')
	b.WriteString(name)
	b.WriteByte(':')
	b.WriteString(portName)
	b.WriteByte('/')
	b.WriteString(string(proto))
	return b.String()
}

// ExternallyAccessible reports whether the port is reachable other than
// through its cluster IPs (a NodePort, external IPs or load-balancer IPs).
func (sp *ServicePort) ExternallyAccessible() bool {
	return sp.NodePort != 0 || len(sp.ExternalIPs) > 0 || len(sp.LoadBalancerIPs) > 0
}

// Equal reports whether two ServicePorts are identical.
func (sp *ServicePort) Equal(o *ServicePort) bool {
	return sp.Namespace == o.Namespace && sp.Name == o.Name && sp.PortName == o.PortName &&
		sp.Protocol == o.Protocol && sp.Port == o.Port && sp.NodePort == o.NodePort &&
		sp.SessionAffinity == o.SessionAffinity &&
		sp.InternalTrafficPolicyLocal == o.InternalTrafficPolicyLocal &&
		sp.ExternalTrafficPolicyLocal == o.ExternalTrafficPolicyLocal &&
		sp.HealthCheckNodePort == o.HealthCheckNodePort &&
		sp.Scheduler == o.Scheduler && sp.UserspacePort == o.UserspacePort &&
		slices.Equal(sp.ClusterIPs, o.ClusterIPs) &&
		slices.Equal(sp.ExternalIPs, o.ExternalIPs) &&
		slices.Equal(sp.LoadBalancerIPs, o.LoadBalancerIPs) &&
		slices.Equal(sp.Endpoints, o.Endpoints)
}

// Endpoint is one backend of a ServicePort.
type Endpoint struct {
	IP       netip.Addr
	Port     uint16
	NodeName string
	// Ready, Serving and Terminating are the EndpointSlice conditions with
	// Kubernetes' defaults applied (nil ready means ready, nil serving
	// means ready, nil terminating means not terminating).
	Ready       bool
	Serving     bool
	Terminating bool
	// Weight is from the fjord.dev/weights annotation (default 1); 0
	// quiesces the endpoint.
	Weight int
	// IsLocal is true when the endpoint runs on Options.NodeName.
	IsLocal bool
	// OutOfTopology: the endpoint's hints (zone or node) send this node's traffic
	// elsewhere; cluster-wide picks leave it out (topology.go).
	OutOfTopology bool
}

// AddrPort returns the endpoint's IP and port.
func (ep Endpoint) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(ep.IP, ep.Port)
}
