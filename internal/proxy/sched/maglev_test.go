package sched

import (
	"net/netip"
	"slices"
	"testing"
)

// owners maps each slot of g's table to the endpoint address owning it.
func owners(g *Maglev) []netip.AddrPort {
	e := g.Endpoints()
	out := make([]netip.AddrPort, 0, len(g.table))
	for _, i := range g.Table() {
		out = append(out, e[i].Addr)
	}
	return out
}

func mustMaglev(t testing.TB, e []Endpoint, m int) *Maglev {
	t.Helper()
	g, err := NewMaglev(e, m, false)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestMaglevBalance(t *testing.T) {
	for _, tc := range []struct{ n, m int }{{3, 65537}, {10, 65537}, {100, 65537}, {5, 4093}} {
		g := mustMaglev(t, eps(tc.n), tc.m)
		count := map[netip.AddrPort]int{}
		for _, a := range owners(g) {
			count[a]++
		}
		if len(count) != tc.n {
			t.Fatalf("n=%d m=%d: %d endpoints own slots", tc.n, tc.m, len(count))
		}
		ideal := float64(tc.m) / float64(tc.n)
		lo, hi := tc.m, 0
		for _, c := range count {
			lo, hi = min(lo, c), max(hi, c)
		}
		t.Logf("n=%d m=%d: slots per endpoint %d..%d, ideal %.0f", tc.n, tc.m, lo, hi, ideal)
		if hi-lo > 1 {
			// Equal weights: every endpoint claims one slot per round.
			t.Errorf("n=%d m=%d: slots per endpoint range %d..%d", tc.n, tc.m, lo, hi)
		}
		for a, c := range count {
			if dev := (float64(c) - ideal) / ideal; dev > 0.03 || dev < -0.03 {
				t.Errorf("n=%d m=%d: %v owns %d slots, %.1f%% from ideal %.0f", tc.n, tc.m, a, c, 100*dev, ideal)
			}
		}
	}
}

// moved returns the fraction of slots whose owner differs.
func moved(a, b []netip.AddrPort) float64 {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return float64(n) / float64(len(a))
}

func TestMaglevMinimalDisruption(t *testing.T) {
	const m = 65537
	for _, n := range []int{5, 10, 50} {
		all := eps(n + 1)
		before := owners(mustMaglev(t, all[:n], m))
		// Remove each endpoint in turn: its ~1/n of slots must move and only
		// a little more. The Maglev paper reports this stays close to minimal.
		for r := range n {
			rest := slices.Delete(slices.Clone(all[:n]), r, r+1)
			after := owners(mustMaglev(t, rest, m))
			frac := moved(before, after)
			minimal := 1 / float64(n)
			t.Logf("n=%d remove %d: %.2f%% moved (minimal %.2f%%)", n, r, 100*frac, 100*minimal)
			if frac < minimal*0.95 || frac > minimal*1.5 {
				t.Errorf("n=%d remove %d: %.2f%% of slots moved, minimal %.2f%%", n, r, 100*frac, 100*minimal)
			}
			for i, a := range before {
				if a != all[r].Addr && after[i] == all[r].Addr {
					t.Fatal("removed endpoint still owns a slot")
				}
			}
		}
		// Add one endpoint: ~1/(n+1) of slots move, to the newcomer mostly.
		after := owners(mustMaglev(t, all, m))
		frac := moved(before, after)
		minimal := 1 / float64(n+1)
		t.Logf("n=%d add one: %.2f%% moved (minimal %.2f%%)", n, 100*frac, 100*minimal)
		if frac < minimal*0.95 || frac > minimal*1.5 {
			t.Errorf("n=%d add one: %.2f%% of slots moved, minimal %.2f%%", n, 100*frac, 100*minimal)
		}
	}
}

func TestMaglevOrderIndependentAndConsistent(t *testing.T) {
	e := eps(9)
	rev := slices.Clone(e)
	slices.Reverse(rev)
	a, b := mustMaglev(t, e, 1009), mustMaglev(t, rev, 1009)
	if !slices.Equal(owners(a), owners(b)) {
		t.Fatal("table depends on endpoint order")
	}
	// Pick agrees with Table and Slot, and is stable per client.
	for i := range 3000 {
		f := flow(i)
		ep, ok := a.Pick(f)
		if !ok || a.Endpoints()[a.Table()[a.Slot(f)]] != ep {
			t.Fatalf("flow %d: Pick %v disagrees with Table/Slot", i, ep)
		}
		if again, _ := b.Pick(f); again != ep {
			t.Fatalf("flow %d: %v vs %v", i, ep, again)
		}
	}
}

func TestMaglevFlowsMoveOnlyFromRemoved(t *testing.T) {
	e := eps(8)
	before := mustMaglev(t, e, 65537)
	after := mustMaglev(t, slices.Delete(slices.Clone(e), 3, 4), 65537)
	movedFlows, fromRemoved := 0, 0
	const flows = 20000
	for i := range flows {
		x, _ := before.Pick(flow(i))
		y, _ := after.Pick(flow(i))
		if x != y {
			movedFlows++
			if x == e[3] {
				fromRemoved++
			}
		}
	}
	if frac := float64(movedFlows) / flows; frac > 1.5/8 {
		t.Errorf("%.1f%% of flows moved removing 1 of 8", 100*frac)
	}
	if fromRemoved < movedFlows*2/3 {
		t.Errorf("only %d of %d moved flows came from the removed endpoint", fromRemoved, movedFlows)
	}
}

func TestMaglevWeighted(t *testing.T) {
	g := mustMaglev(t, eps(3, 2, 1, 1), 65537)
	count := map[netip.AddrPort]int{}
	for _, a := range owners(g) {
		count[a]++
	}
	e := eps(3)
	for i, want := range []float64{0.5, 0.25, 0.25} {
		got := float64(count[e[i].Addr]) / 65537
		if got < want-0.02 || got > want+0.02 {
			t.Errorf("%v owns %.3f of slots, want about %.2f", e[i].Addr, got, want)
		}
	}
}
