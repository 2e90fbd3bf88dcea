package probe

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// path builds A --(1500)-- R --(1400)-- B, R routing between 10.9.1.0/24 and 10.9.2.0/24.
func path(t *testing.T) (a, r, b *netnstest.NS) {
	t.Helper()
	a, r, b = netnstest.New(t, "pa"), netnstest.New(t, "pr"), netnstest.New(t, "pb")
	link := func(x, y *netnstest.NS, xName, yName string, mtu int, xAddr, yAddr string) {
		l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: xName, MTU: mtu}, PeerName: yName}
		if err := x.H.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
		peer, err := x.H.LinkByName(yName)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := openNS(y.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer fd.Close()
		if err := x.H.LinkSetNsFd(peer, int(fd.Fd())); err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct {
			ns   *netnstest.NS
			name string
			addr string
		}{{x, xName, xAddr}, {y, yName, yAddr}} {
			l, err := e.ns.H.LinkByName(e.name)
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := netlink.ParseAddr(e.addr)
			if err := e.ns.H.AddrAdd(l, addr); err != nil {
				t.Fatal(err)
			}
			if err := e.ns.H.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	link(a, r, "a0", "r0", 1500, "10.9.1.2/24", "10.9.1.1/24")
	link(r, b, "r1", "b0", 1400, "10.9.2.1/24", "10.9.2.2/24")
	if err := inns.SetSysctl(r.Path, "net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		ns *netnstest.NS
		gw string
	}{{a, "10.9.1.1"}, {b, "10.9.2.1"}} {
		_, all, _ := net.ParseCIDR("0.0.0.0/0")
		if err := x.ns.H.RouteAdd(&netlink.Route{Dst: all, Gw: net.ParseIP(x.gw)}); err != nil {
			t.Fatal(err)
		}
	}
	return a, r, b
}

func TestPingOutcomes(t *testing.T) {
	a, r, _ := path(t)
	p, err := Open(a.Path, false, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dst := netip.MustParseAddr("10.9.2.2")
	ping := func(size int, df bool) Result {
		t.Helper()
		res, err := p.Ping(dst, size, df, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Fresh veths may drop the very first packets while their carrier comes up.
	for i := 0; i < 20 && ping(100, false).Outcome != Reply; i++ {
	}
	if res := ping(1400, true); res.Outcome != Reply || res.RTT <= 0 || res.From != dst {
		t.Fatalf("1400 DF: %+v, want a reply from %v", res, dst)
	}
	if res := ping(1500, true); res.Outcome != FragNeeded || res.MTU != 1400 || res.From != netip.MustParseAddr("10.9.1.1") {
		t.Fatalf("1500 DF: %+v, want fragmentation needed, MTU 1400, from the router", res)
	}
	// PROBE mode ignores the path MTU the kernel just cached: 1500 still goes out.
	if res := ping(1500, true); res.Outcome != FragNeeded {
		t.Fatalf("1500 DF again: %+v, want the router to answer again", res)
	}
	if res := ping(1500, false); res.Outcome != Reply {
		t.Fatalf("1500 without DF: %+v, want a reply (the router fragments)", res)
	}
	if res := ping(1600, true); res.Outcome != LocalTooBig || res.MTU != 1500 {
		t.Fatalf("1600 DF: %+v, want refused locally at MTU 1500", res)
	}
	// The router stops telling: a black hole.
	if out, err := r.Run(t, "nft", "add table inet bh; add chain inet bh out { type filter hook output priority 0; }; add rule inet bh out icmp type destination-unreachable drop"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if res := ping(1500, true); res.Outcome != Lost {
		t.Fatalf("1500 DF through a black hole: %+v, want lost", res)
	}
	if res := ping(1000, true); res.Outcome != Reply {
		t.Fatalf("small packets still pass: %+v", res)
	}
	if res := ping(1000, true); res.Outcome != Reply {
		t.Fatalf("again: %+v", res)
	}
	if res, err := p.Ping(netip.MustParseAddr("10.9.3.3"), 100, true, 300*time.Millisecond); err != nil || res.Outcome == Reply {
		t.Fatalf("an address nobody has: %+v %v", res, err)
	}
}
