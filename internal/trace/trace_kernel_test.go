package trace

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/resolve"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// twoNodes wires namespaces a (10.7.0.1) and b (10.7.0.2) with a veth and starts a TCP
// listener on b:8080.
func twoNodes(t *testing.T) (a, b resolve.Node) {
	t.Helper()
	na, nb := netnstest.New(t, "tra"), netnstest.New(t, "trb")
	if err := na.H.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
		t.Fatal(err)
	}
	peer, _ := na.H.LinkByName("peer0")
	bns, err := nsFile(nb.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer bns.Close()
	if err := na.H.LinkSetNsFd(peer, int(bns.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := nb.H.LinkSetName(mustLink(t, nb.H, "peer0"), "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		h    *netlink.Handle
		addr string
	}{{na.H, "10.7.0.1/24"}, {nb.H, "10.7.0.2/24"}} {
		l := mustLink(t, x.h, "eth0")
		ad, _ := netlink.ParseAddr(x.addr)
		if err := x.h.AddrAdd(l, ad); err != nil {
			t.Fatal(err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		lo := mustLink(t, x.h, "lo")
		_ = x.h.LinkSetUp(lo)
	}
	var ln net.Listener
	if err := inns.Do(nb.Path, func() (err error) { ln, err = net.Listen("tcp", "10.7.0.2:8080"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	a = resolve.Node{Name: "a", IP: netip.MustParseAddr("10.7.0.1"), Netns: na.Path, Here: true}
	b = resolve.Node{Name: "b", IP: netip.MustParseAddr("10.7.0.2"), Netns: nb.Path, Here: true}
	// Let the veth's carrier come up.
	for i := 0; i < 50; i++ {
		if err := inns.Do(a.Netns, func() error {
			c, err := net.DialTimeout("tcp", "10.7.0.2:8080", 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		}); err == nil {
			break
		}
	}
	return a, b
}

func mustLink(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLiveProbeNamesTheRuleAndLeavesNothing drops the probe with a foreign rule, then
// removes the rule: the trace names node and rule, then says DELIVERED, and no table
// or BPF program of the trace remains either time.
func TestLiveProbeNamesTheRuleAndLeavesNothing(t *testing.T) {
	a, b := twoNodes(t)
	req := Request{
		Source: Source{Name: "node a", Node: a, Netns: a.Netns, IP: a.IP},
		Target: Target{Kind: "address", Name: "10.7.0.2", Proto: "tcp", Addr: netip.MustParseAddrPort("10.7.0.2:8080")},
		Nodes:  []resolve.Node{a, b}, Probe: true, Timeout: time.Second,
	}
	add := "add table inet fw; add chain inet fw in { type filter hook input priority 0; }; add rule inet fw in tcp dport 8080 drop"
	if out, err := runIn(b.Netns, "nft", add); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	res, err := Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Outcome != "DROPPED" || !strings.HasPrefix(res.Verdict.Text, "DROPPED at b/nftables inet fw in: tcp dport 8080 drop (handle") {
		t.Fatalf("verdict %+v\n%+v", res.Verdict, res.Observed)
	}
	nothingLeft(t, a, b)
	if out, err := runIn(b.Netns, "nft", "delete table inet fw"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	res, err = Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Outcome != "DELIVERED" {
		t.Fatalf("after removing the rule: %+v", res.Verdict)
	}
	nothingLeft(t, a, b)

	// A closed port: the kernel's drop reason names it.
	req.Target.Addr = netip.MustParseAddrPort("10.7.0.2:8081")
	res, err = Run(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Outcome != "DROPPED" || !strings.Contains(res.Verdict.Text, "NO_SOCKET: nothing listens on that port") || !strings.HasPrefix(res.Verdict.Text, "DROPPED at b/") {
		t.Fatalf("closed port: %+v\n%+v\n%v", res.Verdict, res.KernelDrops, res.Notes)
	}
	nothingLeft(t, a, b)
}

func nothingLeft(t *testing.T, nodes ...resolve.Node) {
	t.Helper()
	for _, n := range nodes {
		left, err := TablesLeft(n.Netns)
		if err != nil || len(left) > 0 {
			t.Fatalf("%s: trace tables left: %v %v", n.Name, left, err)
		}
	}
	for end := time.Now().Add(5 * time.Second); loadedPrograms(t)[ProgramName]; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the trace's BPF program is still loaded")
		}
	}
}
