package nftproxy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/sched"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// maxDispatchRules is the largest endpoint count random and sh dispatch
// with one rule per endpoint; beyond it they use a verdict map.
//
// Why rules: every verdict map written inline in a rule is an anonymous
// set, and nft (1.0.6 here) slows down badly with thousands of them: the
// first sync of 10,000 services × 3 endpoints took 49 s with one anonymous
// vmap per service and 2.9 s with per-endpoint rules (same transaction
// otherwise, fresh netns). The per-packet cost is at most 16 short rules,
// and only for the first packet of a connection.
const maxDispatchRules = 16

// How each scheduler picks an endpoint for a new connection (later packets
// follow conntrack). Endpoints are in servicemap order (sorted by IP and
// port); "goto ep" jumps to an endpoint chain.
//
//	random  up to maxDispatchRules endpoints, one rule each:
//	        "numgen random mod R < w goto ep", R the weight of this and
//	        the later endpoints, the last rule a plain goto. Each rule
//	        draws anew, so endpoint i is taken with probability
//	        w_i/sum(w) exactly (uniform when weights are equal, as in
//	        kube-proxy). Beyond that: numgen random mod W vmap, each
//	        endpoint repeated by its weight (W at most MaxWRRSlots).
//	rr      numgen inc mod N vmap: strict rotation, weights ignored
//	wrr     numgen inc mod W vmap over one cycle of sched's smooth weighted
//	        round robin (W = sum of weights, scaled down to MaxWRRSlots)
//	sh      "jhash <ip> saddr mod N seed HashSeed == i goto ep_i" rules
//	        (the hash is the same in every rule), or a jhash vmap beyond
//	        maxDispatchRules
//	maglev  jhash <ip> saddr mod M seed HashSeed vmap over sched's Maglev
//	        table of size M (MaglevTableSize): removing an endpoint moves
//	        only the clients that were on it (plus a few slots)
//	lc,wlc  need per-connection counts nft does not keep: with a
//	        UserspacePort they are redirected there (render.go); without
//	        one they are dispatched like rr
//
// One endpoint is a plain goto whatever the scheduler. The numgen counter of
// rr and wrr restarts when the chain is rewritten.
func (s *settings) dispatchRules(sp *servicemap.ServicePort, eps []servicemap.Endpoint, chainOf func(servicemap.Endpoint) string) []string {
	n := len(eps)
	if n == 1 {
		return []string{"goto " + chainOf(eps[0])}
	}
	switch sp.Scheduler {
	case "wrr":
		return []string{"numgen inc mod " + s.vmap(wrrSlots(eps, s.wrrMaxSlots), eps, chainOf)}
	case "rr", "lc", "wlc":
		return []string{"numgen inc mod " + s.vmap(identity(n), eps, chainOf)}
	case "maglev":
		if n < s.maglevSize {
			return []string{s.hashExpr(s.maglevSize) + s.vmapBody(maglevSlots(eps, s.maglevSize), eps, chainOf)}
		}
		// More endpoints than table slots: plain source hashing.
		fallthrough
	case "sh":
		if n > maxDispatchRules {
			return []string{s.hashExpr(n) + s.vmapBody(identity(n), eps, chainOf)}
		}
		rules := make([]string, 0, n)
		for i, ep := range eps[:n-1] {
			rules = append(rules, s.hashExpr(n)+"== "+itoa(i)+" goto "+chainOf(ep))
		}
		return append(rules, "goto "+chainOf(eps[n-1]))
	default: // random
		if n > maxDispatchRules {
			return []string{"numgen random mod " + s.vmap(blockSlots(eps, s.wrrMaxSlots), eps, chainOf)}
		}
		rest := 0
		for _, ep := range eps {
			rest += ep.Weight
		}
		rules := make([]string, 0, n)
		for _, ep := range eps[:n-1] {
			rules = append(rules, "numgen random mod "+itoa(rest)+" < "+itoa(ep.Weight)+" goto "+chainOf(ep))
			rest -= ep.Weight
		}
		return append(rules, "goto "+chainOf(eps[n-1]))
	}
}

func (s *settings) hashExpr(mod int) string {
	return fmt.Sprintf("jhash %s saddr mod %d seed %#x ", s.fam.ip, mod, s.hashSeed)
}

// vmap writes "<len(slots)> vmap { … }".
func (s *settings) vmap(slots []int, eps []servicemap.Endpoint, chainOf func(servicemap.Endpoint) string) string {
	return itoa(len(slots)) + " " + s.vmapBody(slots, eps, chainOf)
}

// vmapBody writes "vmap { 0 : goto a , 1 : goto b }" with slot i going to
// eps[slots[i]].
func (s *settings) vmapBody(slots []int, eps []servicemap.Endpoint, chainOf func(servicemap.Endpoint) string) string {
	names := make([]string, len(eps))
	for i, ep := range eps {
		names[i] = chainOf(ep)
	}
	var b strings.Builder
	b.WriteString("vmap { ")
	for i, e := range slots {
		if i > 0 {
			b.WriteString(" , ")
		}
		b.WriteString(itoa(i))
		b.WriteString(" : goto ")
		b.WriteString(names[e])
	}
	b.WriteString(" }")
	return b.String()
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// scaledWeights returns the endpoints' weights scaled so that their sum is
// at most max (each keeps at least 1).
func scaledWeights(eps []servicemap.Endpoint, max int) []int {
	sum := 0
	for _, ep := range eps {
		sum += ep.Weight
	}
	w := make([]int, len(eps))
	for i, ep := range eps {
		w[i] = ep.Weight
		if sum > max {
			w[i] = max1(ep.Weight * max / sum)
		}
	}
	return w
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// blockSlots repeats endpoint i weight(i) times in a row; all weights
// equal means one slot each.
func blockSlots(eps []servicemap.Endpoint, max int) []int {
	w := scaledWeights(eps, max)
	equal := true
	for _, x := range w {
		equal = equal && x == w[0]
	}
	if equal {
		return identity(len(eps))
	}
	var out []int
	for i, n := range w {
		for range n {
			out = append(out, i)
		}
	}
	return out
}

// wrrSlots is one cycle of sched's smooth weighted round robin.
func wrrSlots(eps []servicemap.Endpoint, max int) []int {
	w := scaledWeights(eps, max)
	seps := make([]sched.Endpoint, len(eps))
	index := make(map[netip.AddrPort]int, len(eps))
	total := 0
	for i, ep := range eps {
		seps[i] = sched.Endpoint{Addr: ep.AddrPort(), Weight: w[i]}
		index[ep.AddrPort()] = i
		total += w[i]
	}
	rr := sched.NewWeightedRoundRobin(seps)
	out := make([]int, total)
	for i := range out {
		ep, _ := rr.Pick(sched.Flow{})
		out[i] = index[ep.Addr]
	}
	return out
}

// maglevSlots is sched's Maglev table of size m over eps.
func maglevSlots(eps []servicemap.Endpoint, m int) []int {
	seps := make([]sched.Endpoint, len(eps))
	index := make(map[netip.AddrPort]int, len(eps))
	for i, ep := range eps {
		seps[i] = sched.Endpoint{Addr: ep.AddrPort(), Weight: ep.Weight}
		index[ep.AddrPort()] = i
	}
	g, err := sched.NewMaglev(seps, m, false)
	if err != nil {
		// Unreachable: m is a validated prime larger than len(eps).
		panic("nftproxy: maglev: " + err.Error())
	}
	order := g.Endpoints()
	table := g.Table()
	out := make([]int, len(table))
	for i, e := range table {
		out[i] = index[order[e].Addr]
	}
	return out
}
