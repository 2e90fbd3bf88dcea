package l4

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// ep returns endpoint 10.0.0.i:80 with weight w.
func ep(i, w int) sched.Endpoint {
	return sched.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80), Weight: w}
}

func mustSched(t *testing.T, name string, eps []sched.Endpoint) sched.Scheduler {
	t.Helper()
	s, err := sched.New(name, eps, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestBalancer returns a balancer scheduling eps with name.
func newTestBalancer(t *testing.T, name string, eps ...sched.Endpoint) *balancer {
	t.Helper()
	b := newBalancer()
	b.update(name, eps, mustSched(t, name, eps))
	return b
}

func active(b *balancer) map[netip.AddrPort]int {
	out := make(map[netip.AddrPort]int)
	for a, c := range b.counts {
		out[a] = c.active
	}
	return out
}

// TestSeedReachesTargets checks that seed leaves a fresh lc or wlc
// scheduler counting exactly the requested connections, for random targets
// and weights.
func TestSeedReachesTargets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"lc", "wlc"} {
		for round := range 200 {
			n := 1 + r.IntN(6)
			var eps []sched.Endpoint
			want := make(map[netip.AddrPort]int)
			for i := range n {
				e := ep(i+1, r.IntN(4)) // weight 0 included
				eps = append(eps, e)
				want[e.Addr] = r.IntN(20)
			}
			lc := mustSched(t, name, eps).(*sched.LeastConn)
			if !seed(lc, eps, func(a netip.AddrPort) int { return want[a] }) {
				t.Fatalf("%s round %d: seed gave up", name, round)
			}
			for _, e := range eps {
				w := want[e.Addr]
				if e.Weight == 0 {
					w = 0 // quiesced endpoints are not scheduled
				}
				if got := lc.Active(e); got != w {
					t.Fatalf("%s round %d: %v (weight %d) counts %d, want %d", name, round, e.Addr, e.Weight, got, w)
				}
			}
		}
	}
}

// TestUpdateCarriesCounts checks that counts survive an endpoint change
// and steer the next picks.
func TestUpdateCarriesCounts(t *testing.T) {
	a, b, c := ep(1, 1), ep(2, 1), ep(3, 1)
	bal := newTestBalancer(t, "lc", a, b)
	var picked []sched.Endpoint
	for range 4 {
		e, ok := bal.pick(sched.Flow{})
		if !ok {
			t.Fatal("no pick")
		}
		picked = append(picked, e)
	}
	// a:2 b:2. Remove a, add c: c must take the next two picks.
	removed, ok := bal.update("lc", []sched.Endpoint{b, c}, mustSched(t, "lc", []sched.Endpoint{b, c}))
	if !ok || len(removed) != 1 || removed[0] != a.Addr {
		t.Fatalf("update: removed %v ok %v", removed, ok)
	}
	for i := range 2 {
		if e, _ := bal.pick(sched.Flow{}); e.Addr != c.Addr {
			t.Fatalf("pick %d after update: %v, want %v", i, e.Addr, c.Addr)
		}
	}
	if got := active(bal); got[a.Addr] != 2 || got[b.Addr] != 2 || got[c.Addr] != 2 {
		t.Fatalf("active %v", got)
	}
	// Releasing the connections of the removed endpoint forgets it.
	for _, e := range picked {
		if e.Addr == a.Addr {
			bal.done(e)
		}
	}
	if _, ok := bal.counts[a.Addr]; ok {
		t.Fatalf("removed endpoint still counted after its last connection: %v", active(bal))
	}
	// Re-adding b's connections' endpoint set unchanged keeps b at 2:
	// one release on b makes it the least loaded.
	bal.done(b)
	if e, _ := bal.pick(sched.Flow{}); e.Addr != b.Addr {
		t.Fatalf("pick after release on b: %v", e.Addr)
	}
}

// TestDoneUnknownIgnored checks that releases never drive counts negative.
func TestDoneUnknownIgnored(t *testing.T) {
	bal := newTestBalancer(t, "wlc", ep(1, 1))
	bal.done(ep(1, 1))
	bal.done(ep(9, 1))
	if got := active(bal)[ep(1, 1).Addr]; got != 0 {
		t.Fatalf("active %d", got)
	}
}
