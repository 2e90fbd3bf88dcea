package conntracktest

import (
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/conntrack"
)

func TestFakeDeletesWhatSelectorsMatch(t *testing.T) {
	svc, ep1, ep2 := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("10.244.1.6")
	flow := func(ep netip.Addr, proto uint8) conntrack.Flow {
		return conntrack.Flow{Protocol: proto, OrigSrc: netip.MustParseAddrPort("10.244.2.7:40000"),
			OrigDst: netip.AddrPortFrom(svc, 53), ReplySrc: netip.AddrPortFrom(ep, 53)}
	}
	var f Fake
	f.Add(flow(ep1, conntrack.ProtoUDP), flow(ep2, conntrack.ProtoUDP), flow(ep1, 6))
	n, err := f.Delete(conntrack.ServiceEndpoint(svc, 53, ep1))
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, err %v", n, err)
	}
	if left := f.Flows(); len(left) != 2 || left[0].ReplySrc.Addr() != ep2 || left[1].Protocol != 6 {
		t.Errorf("left %v", left)
	}
	if _, err := f.Delete(conntrack.Selector{}); err == nil {
		t.Error("an empty selector was accepted")
	}
	if c := f.Calls(); len(c) != 1 {
		t.Errorf("calls %v: a rejected call must not be recorded", c)
	}
}
