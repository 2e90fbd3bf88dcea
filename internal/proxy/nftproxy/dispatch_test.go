package nftproxy

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

func dispatchFor(t *testing.T, scheduler string, weights ...int) []string {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	s, err := newSettings(testConfig(clock))
	if err != nil {
		t.Fatal(err)
	}
	sp := &servicemap.ServicePort{Scheduler: scheduler}
	var eps []servicemap.Endpoint
	for i, w := range weights {
		ep := endpoint(fmt.Sprintf("10.244.%d.%d:80", i/250, i%250+1))
		ep.Weight = w
		eps = append(eps, ep)
	}
	return s.dispatchRules(sp, eps, func(ep servicemap.Endpoint) string { return "ep-" + ep.IP.String() })
}

// TestRandomRulesAreExactlyWeighted computes, from the rules alone, the
// probability that each endpoint is taken, and checks it is w/sum(w).
func TestRandomRulesAreExactlyWeighted(t *testing.T) {
	for _, weights := range [][]int{{1, 1}, {1, 1, 1}, {3, 1, 1}, {5, 0 + 1, 7, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}} {
		rules := dispatchFor(t, "random", weights...)
		if len(rules) != len(weights) {
			t.Fatalf("weights %v: %d rules, want one per endpoint", weights, len(rules))
		}
		total := 0
		for _, w := range weights {
			total += w
		}
		reach := big.NewRat(1, 1) // probability of reaching rule i
		for i, r := range rules {
			p := new(big.Rat).Set(reach)
			if i < len(rules)-1 {
				var mod, lt int
				var target string
				if _, err := fmt.Sscanf(r, "numgen random mod %d < %d goto %s", &mod, &lt, &target); err != nil {
					t.Fatalf("rule %q: %v", r, err)
				}
				p.Mul(reach, big.NewRat(int64(lt), int64(mod)))
				reach.Mul(reach, big.NewRat(int64(mod-lt), int64(mod)))
			} else if !strings.HasPrefix(r, "goto ") {
				t.Fatalf("last rule %q is not a plain goto", r)
			}
			if want := big.NewRat(int64(weights[i]), int64(total)); p.Cmp(want) != 0 {
				t.Errorf("weights %v: endpoint %d taken with probability %v, want %v", weights, i, p, want)
			}
		}
	}
}

func TestDispatchForms(t *testing.T) {
	ones := func(n int) []int {
		w := make([]int, n)
		for i := range w {
			w[i] = 1
		}
		return w
	}
	tests := []struct {
		scheduler string
		weights   []int
		rules     int
		prefix    string
	}{
		{"random", ones(1), 1, "goto ep-"},
		{"maglev", ones(1), 1, "goto ep-"},
		{"random", ones(16), 16, "numgen random mod 16 < 1 goto"},
		{"random", ones(17), 1, "numgen random mod 17 vmap {"},
		{"sh", ones(16), 16, "jhash ip saddr mod 16 seed 0x5eed == 0 goto"},
		{"sh", ones(17), 1, "jhash ip saddr mod 17 seed 0x5eed vmap {"},
		{"rr", ones(3), 1, "numgen inc mod 3 vmap {"},
		{"lc", ones(3), 1, "numgen inc mod 3 vmap {"},
		{"wrr", []int{2, 1}, 1, "numgen inc mod 3 vmap { 0 : goto ep-10.244.0.1 , 1 : goto ep-10.244.0.2 , 2 : goto ep-10.244.0.1 }"},
		{"wrr", []int{60000, 60000, 1}, 1, "numgen inc mod 255 vmap {"}, // scaled to 127+127+1
		{"maglev", ones(3), 1, "jhash ip saddr mod 251 seed 0x5eed vmap {"},
		{"maglev", ones(251), 1, "jhash ip saddr mod 251 seed 0x5eed vmap {"}, // sh over 251 endpoints
	}
	for _, tt := range tests {
		rules := dispatchFor(t, tt.scheduler, tt.weights...)
		if len(rules) != tt.rules || !strings.HasPrefix(rules[0], tt.prefix) {
			t.Errorf("%s over %d endpoints: %d rules, first %.90q; want %d starting %q", tt.scheduler, len(tt.weights), len(rules), rules[0], tt.rules, tt.prefix)
		}
	}
}
