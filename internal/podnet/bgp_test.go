package podnet_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/kernel/fakekernel"
	. "github.com/fjord-net/fjord/internal/podnet"
)

// Two racks: r1 198.18.190.0/24 (n1, n3; router .254), r2 198.18.191.0/24 (n2, n4).

func bgpSelf() Self {
	return Self{
		Name: "n1", Mode: ModeBGP, NodeIP: netip.MustParseAddr("198.18.190.11"),
		PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), Underlay: "eth0",
		OnLink: []netip.Prefix{netip.MustParsePrefix("198.18.190.0/24")},
		Device: Device{Name: "fjord.1", VNI: 1, Port: 8472, MTU: 1450, MAC: "0e:00:00:00:00:01"},
	}
}

var rackNodes = []Peer{
	{Name: "n1", NodeIP: netip.MustParseAddr("198.18.190.11"), PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), VTEPMAC: "0e:00:00:00:00:01"},
	{Name: "n2", NodeIP: netip.MustParseAddr("198.18.191.12"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), VTEPMAC: "0e:00:00:00:00:02"},
	{Name: "n3", NodeIP: netip.MustParseAddr("198.18.190.13"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), VTEPMAC: "0e:00:00:00:00:03"},
	{Name: "n4", NodeIP: netip.MustParseAddr("198.18.191.14"), PodCIDR: netip.MustParsePrefix("10.244.3.0/24"), VTEPMAC: "0e:00:00:00:00:04"},
}

func learned(pairs ...string) []Learned {
	var out []Learned
	for _, p := range pairs {
		pfx, nh, _ := strings.Cut(p, " via ")
		out = append(out, Learned{Prefix: netip.MustParsePrefix(pfx), NextHop: netip.MustParseAddr(nh)})
	}
	return out
}

var cluster = netip.MustParsePrefix("10.244.0.0/16")

func TestPlanBGP(t *testing.T) {
	dead := append([]Peer(nil), rackNodes...)
	dead[3].Dead = true
	noMAC := append([]Peer(nil), rackNodes...)
	noMAC[1].VTEPMAC = ""
	tests := []struct {
		name    string
		encap   Encap
		nodes   []Peer
		learned []Learned
		want    string
		errs    []string // each a part of one PeerError, in order
	}{{
		name:  "top-of-rack: the router is the next hop across racks, rack-mates direct",
		encap: EncapNever, nodes: rackNodes,
		learned: learned("10.244.1.0/24 via 198.18.190.254", "10.244.2.0/24 via 198.18.190.13", "10.244.3.0/24 via 198.18.190.254",
			"0.0.0.0/0 via 198.18.190.254", "10.96.0.0/16 via 198.18.190.254", "10.244.0.0/24 via 198.18.190.254", "10.244.0.128/25 via 198.18.190.13"),
		want: `route 10.244.1.0/24 via 198.18.190.254 dev eth0 proto bgp
route 10.244.2.0/24 via 198.18.190.13 dev eth0 proto bgp
route 10.244.3.0/24 via 198.18.190.254 dev eth0 proto bgp
route unreachable 10.244.0.0/24
`,
	}, {
		name:  "full mesh across subnets without encapsulation: off-link next hops refused",
		encap: EncapNever, nodes: rackNodes,
		learned: learned("10.244.1.0/24 via 198.18.191.12", "10.244.2.0/24 via 198.18.190.13"),
		want: `route 10.244.2.0/24 via 198.18.190.13 dev eth0 proto bgp
route unreachable 10.244.0.0/24
`,
		errs: []string{"node n2: path 10.244.1.0/24: next hop 198.18.191.12 is not on-link from eth0 (198.18.190.0/24); the router must set itself as next hop"},
	}, {
		name:  "cross-subnet: VXLAN only towards the other rack",
		encap: EncapCrossSubnet, nodes: rackNodes,
		learned: learned("10.244.1.0/24 via 198.18.191.12", "10.244.2.0/24 via 198.18.190.13", "10.244.3.0/24 via 198.18.190.254"),
		want: `device fjord.1 vni 1 port 8472 local 198.18.190.11 dev eth0 mtu 1450 mac 0e:00:00:00:00:01
addr 10.244.0.0/32
route 10.244.1.0/24 via 10.244.1.0 dev fjord.1 onlink proto bgp
route 10.244.2.0/24 via 198.18.190.13 dev eth0 proto bgp
route 10.244.3.0/24 via 10.244.3.0 dev fjord.1 onlink proto bgp
route unreachable 10.244.0.0/24
neigh 10.244.1.0 lladdr 0e:00:00:00:00:02 dev fjord.1
neigh 10.244.3.0 lladdr 0e:00:00:00:00:04 dev fjord.1
fdb 0e:00:00:00:00:02 dst 198.18.191.12 dev fjord.1
fdb 0e:00:00:00:00:04 dst 198.18.191.14 dev fjord.1
`,
	}, {
		name:  "always: VXLAN to every node that has a path",
		encap: EncapAlways, nodes: rackNodes,
		learned: learned("10.244.2.0/24 via 198.18.190.13"),
		want: `device fjord.1 vni 1 port 8472 local 198.18.190.11 dev eth0 mtu 1450 mac 0e:00:00:00:00:01
addr 10.244.0.0/32
route 10.244.2.0/24 via 10.244.2.0 dev fjord.1 onlink proto bgp
route unreachable 10.244.0.0/24
neigh 10.244.2.0 lladdr 0e:00:00:00:00:03 dev fjord.1
fdb 0e:00:00:00:00:03 dst 198.18.190.13 dev fjord.1
`,
	}, {
		name:  "a dead node's path is dropped before the hold timer expires",
		encap: EncapNever, nodes: dead,
		learned: learned("10.244.1.0/24 via 198.18.190.254", "10.244.3.0/24 via 198.18.190.254"),
		want: `route 10.244.1.0/24 via 198.18.190.254 dev eth0 proto bgp
route unreachable 10.244.0.0/24
`,
		errs: []string{"node n4: its lease expired: route to 10.244.3.0/24 withdrawn"},
	}, {
		name:  "a path no Node owns yet is programmed (a joining node)",
		encap: EncapCrossSubnet, nodes: rackNodes[:1],
		learned: learned("10.244.9.0/24 via 198.18.190.254"),
		want: `device fjord.1 vni 1 port 8472 local 198.18.190.11 dev eth0 mtu 1450 mac 0e:00:00:00:00:01
addr 10.244.0.0/32
route 10.244.9.0/24 via 198.18.190.254 dev eth0 proto bgp
route unreachable 10.244.0.0/24
`,
	}, {
		name:  "cross-subnet towards a node without a vxlan MAC",
		encap: EncapCrossSubnet, nodes: noMAC,
		learned: learned("10.244.1.0/24 via 198.18.190.254"),
		want: `device fjord.1 vni 1 port 8472 local 198.18.190.11 dev eth0 mtu 1450 mac 0e:00:00:00:00:01
addr 10.244.0.0/32
route unreachable 10.244.0.0/24
`,
		errs: []string{"node n2: needs VXLAN (--encap cross-subnet) but has not published its vxlan MAC"},
	}, {
		name:  "nothing learned yet",
		encap: EncapNever, nodes: rackNodes,
		want: "route unreachable 10.244.0.0/24\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, errs := PlanBGP(bgpSelf(), BGPSelf{Encap: tt.encap, ClusterCIDR: cluster}, tt.nodes, tt.learned)
			if got := st.String(); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors %v, want %d", errs, len(tt.errs))
			}
			for i, e := range tt.errs {
				if !strings.Contains(errs[i].Error(), e) {
					t.Errorf("error %d: %q does not contain %q", i, errs[i], e)
				}
			}
		})
	}
}

// TestBGPRoutesMoveInPlace: a path that moves between plain routing and VXLAN, or
// between next hops, is replaced (never deleted and added), and any state reaches any
// other, as in TestAnyStateToAnyState.
func TestBGPRoutesMoveInPlace(t *testing.T) {
	plan := func(e Encap, l []Learned) State {
		st, _ := PlanBGP(bgpSelf(), BGPSelf{Encap: e, ClusterCIDR: cluster}, rackNodes, l)
		return st
	}
	direct := plan(EncapCrossSubnet, learned("10.244.2.0/24 via 198.18.190.13"))
	viaRouter := plan(EncapCrossSubnet, learned("10.244.2.0/24 via 198.18.190.254"))
	c := Diff(direct, viaRouter)
	if len(c.DelRoutes) != 0 || len(c.SetRoutes) != 1 || c.SetRoutes[0].Gw.String() != "198.18.190.254" {
		t.Fatalf("a next-hop change must replace the route in place: %+v", c)
	}
	states := []State{
		plan(EncapNever, nil), direct, viaRouter,
		plan(EncapAlways, learned("10.244.2.0/24 via 198.18.190.13", "10.244.1.0/24 via 198.18.190.254")),
		plan(EncapCrossSubnet, learned("10.244.1.0/24 via 198.18.190.254", "10.244.3.0/24 via 198.18.190.254")),
	}
	var cur State
	for i := 0; i < 3*len(states)*len(states); i++ {
		want := states[(i*7+i/len(states))%len(states)]
		cur = fakekernel.ApplyTo(cur, Diff(cur, want))
		// Diff never removes the vxlan device (a mode change must not cut traffic),
		// so compare what it does own: routes, neighbours, FDB entries.
		if got, w := withoutDevice(cur), withoutDevice(want); got != w {
			t.Fatalf("step %d: got\n%s\nwant\n%s", i, got, w)
		}
	}
}

func TestParseEncap(t *testing.T) {
	for _, ok := range []string{"never", "cross-subnet", "always"} {
		if _, err := ParseEncap(ok); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseEncap("ipip"); err == nil || !strings.Contains(err.Error(), "never, cross-subnet, always") {
		t.Fatalf("ipip: %v", err)
	}
}

func withoutDevice(s State) string {
	s.Device, s.Addrs = nil, nil
	return s.String()
}

func TestKeepBGP(t *testing.T) {
	cur, _ := PlanBGP(bgpSelf(), BGPSelf{Encap: EncapCrossSubnet, ClusterCIDR: cluster}, rackNodes,
		learned("10.244.1.0/24 via 198.18.191.12", "10.244.2.0/24 via 198.18.190.13"))
	// Restarted: nothing learned yet. Everything the kernel had stays.
	empty, _ := PlanBGP(bgpSelf(), BGPSelf{Encap: EncapCrossSubnet, ClusterCIDR: cluster}, rackNodes, nil)
	if c := Diff(cur, KeepBGP(cur, empty)); !c.Empty() {
		t.Fatalf("a restart before End-of-RIB would change the kernel: %+v", c)
	}
	// Part learned, with a new next hop: that route moves, the rest stays.
	part, _ := PlanBGP(bgpSelf(), BGPSelf{Encap: EncapCrossSubnet, ClusterCIDR: cluster}, rackNodes, learned("10.244.2.0/24 via 198.18.190.254"))
	c := Diff(cur, KeepBGP(cur, part))
	if len(c.SetRoutes) != 1 || c.SetRoutes[0].Gw.String() != "198.18.190.254" || len(c.DelRoutes)+len(c.DelNeighs)+len(c.DelFDB) != 0 {
		t.Fatalf("changes %+v", c)
	}
}
