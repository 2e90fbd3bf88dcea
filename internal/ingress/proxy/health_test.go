package proxy

import (
	"net/netip"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestHealthEjectsAfterConsecutiveFailuresWithGrowingBackoff(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h := newHealth(HealthOptions{MaxFails: 2, Backoff: time.Second, MaxBackoff: 3 * time.Second}, clk.now)
	ep := netip.MustParseAddrPort("10.0.0.1:80")
	steps := []struct {
		do      string // fail, ok, wait
		wait    time.Duration
		ejected bool
	}{
		{do: "fail", ejected: false},
		{do: "ok", ejected: false}, // a success resets the count
		{do: "fail", ejected: false},
		{do: "fail", ejected: true}, // 2 in a row: out for 1s
		{do: "wait", wait: 999 * time.Millisecond, ejected: true},
		{do: "wait", wait: time.Millisecond, ejected: false},
		{do: "fail"}, {do: "fail", ejected: true}, // again: 2s
		{do: "wait", wait: 1999 * time.Millisecond, ejected: true},
		{do: "wait", wait: time.Millisecond, ejected: false},
		{do: "fail"}, {do: "fail", ejected: true}, // 4s capped at 3s
		{do: "wait", wait: 3 * time.Second, ejected: false},
		{do: "ok", ejected: false},
		{do: "fail"}, {do: "fail", ejected: true}, // reset by the success: 1s
		{do: "wait", wait: time.Second, ejected: false},
	}
	for i, s := range steps {
		switch s.do {
		case "fail":
			h.failure(ep)
		case "ok":
			h.success(ep)
		case "wait":
			clk.advance(s.wait)
		}
		if got := h.ejected(ep); got != s.ejected {
			t.Fatalf("step %d (%s %v): ejected = %v, want %v", i, s.do, s.wait, got, s.ejected)
		}
	}
}

func TestBalancerRoundRobinSkipsEjectedAndTried(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := newBalancer(HealthOptions{MaxFails: 1, Backoff: time.Minute}, clk.now)
	k := UpstreamKey{Namespace: "ns", Service: "s"}
	a, bb, c := netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.2:80"), netip.MustParseAddrPort("10.0.0.3:80")
	eps := []netip.AddrPort{a, bb, c}
	var got []netip.AddrPort
	for i := 0; i < 6; i++ {
		ep, _ := b.pick(k, eps, nil)
		got = append(got, ep)
	}
	if want := []netip.AddrPort{a, bb, c, a, bb, c}; !equalEps(got, want) {
		t.Errorf("round robin: %v, want %v", got, want)
	}
	b.health.failure(bb)
	for i := 0; i < 4; i++ {
		if ep, _ := b.pick(k, eps, nil); ep == bb {
			t.Errorf("pick %d chose the ejected endpoint", i)
		}
	}
	if ep, _ := b.pick(k, eps, []netip.AddrPort{a, c}); ep != bb {
		t.Errorf("with the others tried, pick = %v, want the ejected one as a last resort", ep)
	}
	if ep, _ := b.pick(k, eps, []netip.AddrPort{a, bb, c}); !containsEp(eps, ep) {
		t.Errorf("with all tried, pick = %v, want any endpoint", ep)
	}
}

func equalEps(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func containsEp(eps []netip.AddrPort, ep netip.AddrPort) bool {
	for _, e := range eps {
		if e == ep {
			return true
		}
	}
	return false
}
