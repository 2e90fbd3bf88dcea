package svcproxy

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/fjord-net/fjord/internal/conntrack"
	"github.com/fjord-net/fjord/internal/conntrack/conntracktest"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// When a TCP endpoint leaves a Service (its node was cut off, say), the connections
// whose SYN it never answered are deleted from conntrack, through the ClusterIP and
// the node port alike: a new connection reusing one of their source ports would
// otherwise be sent to it for two minutes. Answered connections, and the other
// endpoint's, stay.
func TestCleanConntrackDropsUnansweredTCPOfGoneEndpoints(t *testing.T) {
	svcIP, gone, kept := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("10.244.2.5")
	web := func(eps ...netip.Addr) servicemap.Map {
		sp := servicemap.ServicePort{Namespace: "ns", Name: "web", Protocol: servicemap.TCP, Port: 80, NodePort: 30080,
			ClusterIPs: []netip.Addr{svcIP}, Scheduler: "random"}
		for _, ep := range eps {
			sp.Endpoints = append(sp.Endpoints, servicemap.Endpoint{IP: ep, Port: 8080, Ready: true, Serving: true, Weight: 1})
		}
		return servicemap.Map{Ports: map[string]servicemap.ServicePort{sp.Key(): sp}}
	}
	const established = 3
	flow := func(sport uint16, dst netip.AddrPort, ep netip.Addr, state uint8) conntrack.Flow {
		return conntrack.Flow{Protocol: conntrack.ProtoTCP, OrigSrc: netip.AddrPortFrom(netip.MustParseAddr("10.244.3.7"), sport),
			OrigDst: dst, ReplySrc: netip.AddrPortFrom(ep, 8080), TCPState: state}
	}
	cluster, nodePort := netip.AddrPortFrom(svcIP, 80), netip.MustParseAddrPort("198.18.0.11:30080")
	var ct conntracktest.Fake
	ct.Add(flow(1, cluster, gone, conntrack.TCPSynSent), flow(2, cluster, gone, established),
		flow(3, cluster, kept, conntrack.TCPSynSent), flow(4, nodePort, gone, conntrack.TCPSynSent))
	p := &Proxy{deps: Deps{Conntrack: &ct}, log: slog.New(slog.DiscardHandler)}
	p.cleanConntrack(web(gone, kept), web(kept))
	var left []uint16
	for _, f := range ct.Flows() {
		left = append(left, f.OrigSrc.Port())
	}
	if !slices.Equal(left, []uint16{2, 3}) {
		t.Fatalf("entries left (by client port): %v; want 2 (answered) and 3 (the other endpoint's)", left)
	}
}
