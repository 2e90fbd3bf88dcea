package kernel_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// Test addresses: underlay 198.18.200.0/24, pods 10.244.0.0/16, all inside namespaces
// the test creates.

// twoNodes links two fresh namespaces with a veth pair carrying 198.18.200.1 and .2.
func twoNodes(t *testing.T) (*netnstest.NS, *netnstest.NS) {
	a, b := netnstest.New(t, "ka"), netnstest.New(t, "kb")
	la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500}, PeerName: "peer0"}
	if err := a.H.LinkAdd(la); err != nil {
		t.Fatal(err)
	}
	peer, err := a.H.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	bh, err := netns.GetFromName(b.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer bh.Close()
	if err := a.H.LinkSetNsFd(peer, int(bh)); err != nil {
		t.Fatal(err)
	}
	lb, _ := b.H.LinkByName("peer0")
	if err := b.H.LinkSetName(lb, "eth0"); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*netnstest.NS{a, b} {
		l, _ := n.H.LinkByName("eth0")
		addr, _ := netlink.ParseAddr([]string{"198.18.200.1/24", "198.18.200.2/24"}[i])
		if err := n.H.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := n.H.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func selfFor(t *testing.T, k *kernel.Netlink, name string, cidr string, mode podnet.Mode) podnet.Self {
	u, err := k.FindUnderlay("eth0", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	mtu, err := podnet.PodMTU(mode, u.MTU, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return podnet.Self{Name: name, Mode: mode, NodeIP: u.Addr, PodCIDR: netip.MustParsePrefix(cidr), Underlay: u.Name, OnLink: u.OnLink,
		Device: podnet.Device{Name: "fjord.1", VNI: 1, Port: 8472, MTU: mtu}}
}

func reconcile(t *testing.T, k *kernel.Netlink, want podnet.State) podnet.Changes {
	t.Helper()
	dev := ""
	if want.Device != nil {
		dev = want.Device.Name
	}
	cur, err := k.Observe(dev)
	if err != nil {
		t.Fatal(err)
	}
	c := podnet.Diff(cur, want)
	if err := k.Apply(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVXLANStateRoundTrip(t *testing.T) {
	a, b := twoNodes(t)
	ka, kb := kernel.New(a.H), kernel.New(b.H)
	selfA := selfFor(t, ka, "a", "10.244.0.0/24", podnet.ModeVXLAN)
	selfB := selfFor(t, kb, "b", "10.244.1.0/24", podnet.ModeVXLAN)
	if selfA.Device.MTU != 1450 {
		t.Fatalf("vxlan MTU over a 1500 underlay = %d, want 1450", selfA.Device.MTU)
	}
	// Create the devices first to learn their MACs, as the agent does.
	reconcile(t, ka, mustPlan(t, selfA, nil))
	reconcile(t, kb, mustPlan(t, selfB, nil))
	selfA.Device.MAC, selfB.Device.MAC = ka.DeviceMAC("fjord.1"), kb.DeviceMAC("fjord.1")
	peers := []podnet.Peer{
		{Name: "a", NodeIP: selfA.NodeIP, PodCIDR: selfA.PodCIDR, VTEPMAC: selfA.Device.MAC},
		{Name: "b", NodeIP: selfB.NodeIP, PodCIDR: selfB.PodCIDR, VTEPMAC: selfB.Device.MAC},
	}
	wantA, wantB := mustPlan(t, selfA, peers), mustPlan(t, selfB, peers)
	reconcile(t, ka, wantA)
	reconcile(t, kb, wantB)

	got, err := ka.Observe("fjord.1")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != wantA.String() {
		t.Fatalf("kernel state:\n%s\nwant:\n%s", got, wantA)
	}
	// A second reconcile (an agent restart) changes nothing.
	if c := reconcile(t, ka, wantA); !c.Empty() {
		t.Fatalf("restart would change the kernel: %+v", c)
	}
	// Node-to-node over the overlay: a's vxlan address reaches b's.
	if out, err := a.Run(t, "ping", "-c1", "-W2", "-I", "10.244.0.0", "10.244.1.0"); err != nil {
		t.Fatalf("ping across vxlan: %v\n%s", err, out)
	}
	// Removing b leaves no trace of it on a.
	wantA2 := mustPlan(t, selfA, peers[:1])
	reconcile(t, ka, wantA2)
	got, _ = ka.Observe("fjord.1")
	if strings.Contains(got.String(), "10.244.1.0") || got.String() != wantA2.String() {
		t.Fatalf("stale state after removing b:\n%s", got)
	}
}

func TestRoutedMode(t *testing.T) {
	a, _ := twoNodes(t)
	ka := kernel.New(a.H)
	self := selfFor(t, ka, "a", "10.244.0.0/24", podnet.ModeRouted)
	peers := []podnet.Peer{{Name: "b", NodeIP: netip.MustParseAddr("198.18.200.2"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}}
	want := mustPlan(t, self, peers)
	reconcile(t, ka, want)
	got, _ := ka.Observe("")
	if got.String() != want.String() {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	routes, _ := a.H.RouteGet(net.ParseIP("10.244.1.7"))
	if len(routes) == 0 || routes[0].Gw.String() != "198.18.200.2" {
		t.Fatalf("route to a pod on b: %+v", routes)
	}
	// Routes fjord does not own are never touched.
	l, _ := a.H.LinkByName("eth0")
	foreign := &netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("10.99.0.0"), Mask: net.CIDRMask(16, 32)}, Gw: net.ParseIP("198.18.200.2"), LinkIndex: l.Attrs().Index}
	if err := a.H.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	reconcile(t, ka, mustPlan(t, self, nil))
	if r, _ := a.H.RouteGet(net.ParseIP("10.99.1.1")); len(r) == 0 || r[0].Gw.String() != "198.18.200.2" {
		t.Fatal("a foreign route was removed")
	}
}

func mustPlan(t *testing.T, self podnet.Self, peers []podnet.Peer) podnet.State {
	t.Helper()
	st, errs := podnet.Plan(self, peers)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return st
}
