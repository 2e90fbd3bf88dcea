package kernel_test

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/podnet"
)

// TestBGPRoutes: routes planned from BGP paths carry their own protocol, read back as
// such, and move between protocols and next hops in place.
func TestBGPRoutes(t *testing.T) {
	a, _ := twoNodes(t)
	ka := kernel.New(a.H)
	self := selfFor(t, ka, "a", "10.244.0.0/24", podnet.ModeBGP)
	nodes := []podnet.Peer{{Name: "b", NodeIP: netip.MustParseAddr("198.18.200.2"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}}
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	plan := func(l ...podnet.Learned) podnet.State {
		st, errs := podnet.PlanBGP(self, podnet.BGPSelf{Encap: podnet.EncapNever, ClusterCIDR: cluster}, nodes, l)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return st
	}
	want := plan(podnet.Learned{Prefix: netip.MustParsePrefix("10.244.1.0/24"), NextHop: netip.MustParseAddr("198.18.200.2")})
	reconcile(t, ka, want)
	got, err := ka.Observe("")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	routes, err := a.H.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: podnet.BGPRouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil || len(routes) != 1 || routes[0].Dst.String() != "10.244.1.0/24" {
		t.Fatalf("proto %d routes: %v %v", podnet.BGPRouteProtocol, routes, err)
	}
	// The same destination planned as a plain (routed-mode) route replaces it in place.
	routed := self
	routed.Mode = podnet.ModeRouted
	st, _ := podnet.Plan(routed, nodes)
	if c := reconcile(t, ka, st); len(c.DelRoutes) != 0 {
		t.Fatalf("a protocol change must not delete first: %+v", c)
	}
	got, _ = ka.Observe("")
	if got.String() != st.String() {
		t.Fatalf("got\n%s\nwant\n%s", got, st)
	}
	// A withdrawn path removes the route.
	reconcile(t, ka, plan())
	got, _ = ka.Observe("")
	if len(got.Routes) != 1 || !got.Routes[0].Unreachable {
		t.Fatalf("after withdrawal: %s", got)
	}
}
