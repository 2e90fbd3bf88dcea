package servicemap

import (
	"cmp"
	"net/netip"
	"slices"
)

// StaleEndpoint is a UDP or TCP endpoint that a ServicePort no longer sends
// traffic to. Conntrack entries from any of ServiceIPs:ServicePort (or a
// node IP:NodePort) to EndpointIP:EndpointPort would keep UDP flows, and
// new TCP connections reusing the source port of one whose SYN it never
// answered, pinned to it, so whoever owns conntrack should delete them.
type StaleEndpoint struct {
	// Key is the ServicePort's key.
	Key      string
	Protocol Protocol
	// ServiceIPs are the old ServicePort's cluster, external and
	// load-balancer IPs, sorted.
	ServiceIPs   []netip.Addr
	ServicePort  uint16
	NodePort     uint16
	EndpointIP   netip.Addr
	EndpointPort uint16
}

// StaleEndpoints lists the UDP and TCP endpoints that prev could send
// traffic to (cluster or local selection) and next cannot, per ServicePort,
// including all endpoints of removed ServicePorts. The result is sorted by
// key, then endpoint.
func StaleEndpoints(prev, next Map) []StaleEndpoint {
	var out []StaleEndpoint
	for _, key := range prev.Keys() {
		old := prev.Ports[key]
		if old.Protocol != UDP && old.Protocol != TCP {
			continue
		}
		before := usedEndpoints(&old)
		if len(before) == 0 {
			continue
		}
		var after map[netip.AddrPort]bool
		if sp, ok := next.Ports[key]; ok {
			after = usedEndpoints(&sp)
		}
		var ips []netip.Addr
		ips = append(ips, old.ClusterIPs...)
		ips = append(ips, old.ExternalIPs...)
		ips = append(ips, old.LoadBalancerIPs...)
		slices.SortFunc(ips, netip.Addr.Compare)
		ips = slices.Compact(ips)
		gone := make([]netip.AddrPort, 0)
		for ap := range before {
			if !after[ap] {
				gone = append(gone, ap)
			}
		}
		slices.SortFunc(gone, netip.AddrPort.Compare)
		for _, ap := range gone {
			out = append(out, StaleEndpoint{
				Key: key, Protocol: old.Protocol, ServiceIPs: ips, ServicePort: old.Port, NodePort: old.NodePort,
				EndpointIP: ap.Addr(), EndpointPort: ap.Port(),
			})
		}
	}
	slices.SortStableFunc(out, func(a, b StaleEndpoint) int {
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// usedEndpoints is the set of endpoints a data plane may send to.
func usedEndpoints(sp *ServicePort) map[netip.AddrPort]bool {
	m := make(map[netip.AddrPort]bool)
	for _, ep := range sp.ClusterEndpoints() {
		m[ep.AddrPort()] = true
	}
	for _, ep := range sp.LocalEndpoints() {
		m[ep.AddrPort()] = true
	}
	return m
}
