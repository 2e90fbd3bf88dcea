package conntrack

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// In a fresh namespace: lo carries a service range and two "endpoints"; nft
// DNATs 10.96.0.10:5353 to 10.244.0.5 and 10.96.0.10:5300 to 10.244.0.6. One UDP packet
// to each leaves a conntrack entry per flow; deleting one endpoint's flows must leave the
// other's.
func TestNetlinkDeletesOnlyTheRemovedEndpointsFlows(t *testing.T) {
	ns := netnstest.New(t, "ct")
	lo, err := ns.H.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.96.0.1/24", "10.244.0.5/32", "10.244.0.6/32"} {
		addr, _ := netlink.ParseAddr(a)
		if err := ns.H.AddrAdd(lo, addr); err != nil {
			t.Fatal(err)
		}
	}
	rules := `table ip fjordct {
	chain out {
		type nat hook output priority -100;
		ip daddr 10.96.0.10 udp dport 5353 dnat to 10.244.0.5:5354
		ip daddr 10.96.0.10 udp dport 5300 dnat to 10.244.0.6:5354
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	send := func(port string) {
		t.Helper()
		if out, err := ns.Run(t, "bash", "-c", "echo x > /dev/udp/10.96.0.10/"+port); err != nil {
			t.Fatalf("send to :%s: %v\n%s", port, err, out)
		}
	}
	send("5353")
	send("5353") // a second client port: a second entry
	send("5300")

	c, err := Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc, ep1, ep2 := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.244.0.5"), netip.MustParseAddr("10.244.0.6")
	count := func(ep netip.Addr) int {
		t.Helper()
		flows, err := c.List(false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range flows {
			if f.OrigDst.Addr() == svc && f.ReplySrc.Addr() == ep {
				n++
			}
		}
		return n
	}
	if count(ep1) != 2 || count(ep2) != 1 {
		flows, _ := c.List(false)
		t.Fatalf("before: %d entries to %v, %d to %v; table %v", count(ep1), ep1, count(ep2), ep2, flows)
	}

	n, err := c.Delete(ServiceEndpoint(svc, 5353, ep1))
	if err != nil || n != 2 {
		t.Fatalf("Delete = %d, %v; want 2", n, err)
	}
	if count(ep1) != 0 || count(ep2) != 1 {
		t.Fatalf("after: %d entries to %v (want 0), %d to %v (want 1)", count(ep1), ep1, count(ep2), ep2)
	}

	// The next packet of the deleted flow is DNATed afresh (here, by the same rule).
	send("5353")
	if count(ep1) != 1 {
		t.Errorf("a new packet made %d entries", count(ep1))
	}

	// Nothing matched is not an error; an invalid selector deletes nothing.
	if n, err := c.Delete(ServiceEndpoint(svc, 9, ep2)); err != nil || n != 0 {
		t.Errorf("no-match delete = %d, %v", n, err)
	}
	if _, err := c.Delete(ServiceIP(svc, 0), Selector{}); err == nil || count(ep2) != 1 {
		t.Errorf("invalid selector: err %v, entries to %v left %d", err, ep2, count(ep2))
	}
	if n, err := c.Delete(ServiceIP(svc, 0)); err != nil || n != 2 {
		t.Errorf("ServiceIP delete = %d, %v; want 2", n, err)
	}
}

func TestNetlinkOnAHandle(t *testing.T) {
	ns := netnstest.New(t, "ct")
	// The handle netnstest made includes NETLINK_NETFILTER; an empty table deletes nothing.
	n, err := NewNetlink(ns.H).Delete(NodePortEndpoint(30053, netip.MustParseAddr("10.244.0.5")),
		ServiceIP(netip.MustParseAddr("fd00:96::10"), 53))
	if err != nil || n != 0 {
		t.Fatalf("Delete = %d, %v", n, err)
	}
}

// TCP: of a removed endpoint's entries only those whose SYN never had an answer are
// deleted; an established connection and another endpoint's unanswered one stay.
func TestNetlinkDeletesOnlyUnansweredTCP(t *testing.T) {
	ns := netnstest.New(t, "ct")
	client, svc := netip.MustParseAddr("10.244.2.7"), netip.MustParseAddr("10.96.0.10")
	gone, other := netip.MustParseAddr("10.244.0.5"), netip.MustParseAddr("10.244.0.6")
	create := func(sport uint16, ep netip.Addr, state uint8) {
		t.Helper()
		f := &netlink.ConntrackFlow{FamilyType: unix.AF_INET, TimeOut: 100, ProtoInfo: &netlink.ProtoInfoTCP{State: state},
			Forward: netlink.IPTuple{SrcIP: client.AsSlice(), DstIP: svc.AsSlice(), Protocol: ProtoTCP, SrcPort: sport, DstPort: 80},
			Reverse: netlink.IPTuple{SrcIP: ep.AsSlice(), DstIP: client.AsSlice(), Protocol: ProtoTCP, SrcPort: 8080, DstPort: sport}}
		if err := ns.H.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
			t.Fatalf("create entry: %v", err)
		}
	}
	const established = 3
	create(40001, gone, TCPSynSent)
	create(40002, gone, established)
	create(40003, other, TCPSynSent)

	c := NewNetlink(ns.H)
	n, err := c.Delete(ServiceEndpoint(svc, 80, gone).TCP())
	if err != nil || n != 1 {
		t.Fatalf("Delete = %d, %v; want 1", n, err)
	}
	flows, err := c.List(false)
	if err != nil {
		t.Fatal(err)
	}
	left := map[uint16]uint8{}
	for _, f := range flows {
		left[f.OrigSrc.Port()] = f.TCPState
	}
	if _, ok := left[40001]; ok || left[40002] != established || left[40003] != TCPSynSent {
		t.Fatalf("left (client port → state) %v; want 40002 established and 40003 syn-sent", left)
	}
}
