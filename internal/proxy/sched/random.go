package sched

import (
	"math/rand/v2"
	"slices"
)

// Random picks an endpoint at random with probability proportional to its
// weight (uniform when weights are equal, like kube-proxy's nftables and
// iptables modes). The random source is injected. A pick is O(log n).
type Random struct {
	eps []Endpoint
	cum []int // cum[i] = sum of weights of eps[0..i]
	rng *rand.Rand
}

// NewRandom returns a weighted random scheduler drawing from src.
func NewRandom(eps []Endpoint, src rand.Source) *Random {
	r := &Random{eps: active(eps), rng: rand.New(src)}
	total := 0
	for _, ep := range r.eps {
		total += ep.Weight
		r.cum = append(r.cum, total)
	}
	return r
}

// Pick draws one endpoint.
func (r *Random) Pick(Flow) (Endpoint, bool) {
	if len(r.eps) == 0 {
		return Endpoint{}, false
	}
	x := r.rng.IntN(r.cum[len(r.cum)-1])
	i, _ := slices.BinarySearch(r.cum, x+1)
	return r.eps[i], true
}
