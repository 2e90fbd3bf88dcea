package podnet_test

import (
	"github.com/fjord-net/fjord/internal/kernel/fakekernel"
	. "github.com/fjord-net/fjord/internal/podnet"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// Test addresses: underlay 198.18.0.0/24 (benchmarking range), pods 10.244.0.0/16.

func vxlanSelf() Self {
	return Self{
		Name: "n1", Mode: ModeVXLAN, NodeIP: netip.MustParseAddr("198.18.0.11"),
		PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), Underlay: "eth0",
		OnLink: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")},
		Device: Device{Name: "fjord.1", VNI: 1, Port: 8472, MTU: 1450, MAC: "0e:00:00:00:00:01"},
	}
}

var threeNodes = []Peer{
	{Name: "n1", NodeIP: netip.MustParseAddr("198.18.0.11"), PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), VTEPMAC: "0e:00:00:00:00:01"},
	{Name: "n2", NodeIP: netip.MustParseAddr("198.18.0.12"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), VTEPMAC: "0e:00:00:00:00:02"},
	{Name: "n3", NodeIP: netip.MustParseAddr("198.18.0.13"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), VTEPMAC: "0e:00:00:00:00:03"},
}

func TestPlanVXLAN(t *testing.T) {
	st, errs := Plan(vxlanSelf(), threeNodes)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := `device fjord.1 vni 1 port 8472 local 198.18.0.11 dev eth0 mtu 1450 mac 0e:00:00:00:00:01
addr 10.244.0.0/32
route 10.244.1.0/24 via 10.244.1.0 dev fjord.1 onlink
route 10.244.2.0/24 via 10.244.2.0 dev fjord.1 onlink
route unreachable 10.244.0.0/24
neigh 10.244.1.0 lladdr 0e:00:00:00:00:02 dev fjord.1
neigh 10.244.2.0 lladdr 0e:00:00:00:00:03 dev fjord.1
fdb 0e:00:00:00:00:02 dst 198.18.0.12 dev fjord.1
fdb 0e:00:00:00:00:03 dst 198.18.0.13 dev fjord.1
`
	if got := st.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanRouted(t *testing.T) {
	self := vxlanSelf()
	self.Mode = ModeRouted
	nodes := append(threeNodes[:3:3], Peer{Name: "far", NodeIP: netip.MustParseAddr("198.19.7.1"), PodCIDR: netip.MustParsePrefix("10.244.9.0/24")})
	st, errs := Plan(self, nodes)
	want := `route 10.244.1.0/24 via 198.18.0.12 dev eth0
route 10.244.2.0/24 via 198.18.0.13 dev eth0
route unreachable 10.244.0.0/24
`
	if got := st.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if len(errs) != 1 || errs[0].Peer != "far" || !strings.Contains(errs[0].Error(), "not on-link") {
		t.Fatalf("want one on-link error for far, got %v", errs)
	}
}

func TestPlanSkipsIncompletePeers(t *testing.T) {
	nodes := []Peer{
		{Name: "nocidr", NodeIP: netip.MustParseAddr("198.18.0.20")},
		{Name: "noip", PodCIDR: netip.MustParsePrefix("10.244.5.0/24"), VTEPMAC: "0e:00:00:00:00:05"},
		{Name: "nomac", NodeIP: netip.MustParseAddr("198.18.0.21"), PodCIDR: netip.MustParsePrefix("10.244.6.0/24")},
		{Name: "dup", NodeIP: netip.MustParseAddr("198.18.0.22"), PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), VTEPMAC: "0e:00:00:00:00:07"},
	}
	st, errs := Plan(vxlanSelf(), nodes)
	if len(st.Routes) != 1 || len(errs) != 4 {
		t.Fatalf("routes %v errs %v", st.Routes, errs)
	}
}

func TestDiffNoChangeWhenEqual(t *testing.T) {
	st, _ := Plan(vxlanSelf(), threeNodes)
	if c := Diff(st, st); !c.Empty() {
		t.Fatalf("diff of a state with itself: %+v", c)
	}
}

func TestDiffRemovesDeletedNode(t *testing.T) {
	before, _ := Plan(vxlanSelf(), threeNodes)
	after, _ := Plan(vxlanSelf(), threeNodes[:2])
	c := Diff(before, after)
	if len(c.DelRoutes) != 1 || c.DelRoutes[0].Dst.String() != "10.244.2.0/24" || len(c.DelNeighs) != 1 || len(c.DelFDB) != 1 {
		t.Fatalf("changes %+v", c)
	}
	if len(c.SetRoutes)+len(c.SetNeighs)+len(c.SetFDB) != 0 || c.Device != nil {
		t.Fatalf("unexpected additions %+v", c)
	}
}

func TestDiffDeviceChanges(t *testing.T) {
	st, _ := Plan(vxlanSelf(), nil)
	cur := st
	d := *st.Device
	d.MTU = 1500
	cur.Device = &d
	if c := Diff(cur, st); c.Device == nil || c.RecreateDevice {
		t.Fatalf("MTU change must fix the device in place: %+v", c)
	}
	d2 := *st.Device
	d2.VNI = 2
	cur.Device = &d2
	if c := Diff(cur, st); !c.RecreateDevice {
		t.Fatalf("VNI change must recreate: %+v", c)
	}
}

// TestAnyStateToAnyState walks cluster memberships in random order (as Tailscale's
// router tests do) and checks every transition lands exactly on the desired state.
func TestAnyStateToAnyState(t *testing.T) {
	extra := Peer{Name: "n4", NodeIP: netip.MustParseAddr("198.18.0.14"), PodCIDR: netip.MustParsePrefix("10.244.3.0/24"), VTEPMAC: "0e:00:00:00:00:04"}
	moved := threeNodes[2]
	moved.NodeIP = netip.MustParseAddr("198.18.0.99")
	memberships := [][]Peer{nil, threeNodes, threeNodes[:2], {threeNodes[0], extra}, append(threeNodes[:2:2], moved, extra)}
	rng := rand.New(rand.NewPCG(1, 2))
	var cur State
	for i := 0; i < 5*len(memberships)*len(memberships); i++ {
		want, _ := Plan(vxlanSelf(), memberships[rng.IntN(len(memberships))])
		cur = fakekernel.ApplyTo(cur, Diff(cur, want))
		if cur.String() != want.String() {
			t.Fatalf("step %d: got\n%s\nwant\n%s", i, cur, want)
		}
		if c := Diff(cur, want); !c.Empty() {
			t.Fatalf("step %d: second diff not empty: %+v", i, c)
		}
	}
}
