package nftproxy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/sched"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// How each scheduler picks an endpoint for a new connection (later packets
// follow conntrack). The verdict map's values are "goto <endpoint chain>";
// endpoints are in servicemap order (sorted by IP and port).
//
//	random  numgen random mod W vmap: uniform over the endpoints, each
//	        repeated by its weight when weights differ (W = sum)
//	rr      numgen inc mod N vmap: strict rotation, weights ignored
//	wrr     numgen inc mod W vmap over the smooth weighted round-robin
//	        sequence of sched (W = sum of weights, at most MaxWRRSlots)
//	sh      jhash <ip> saddr mod N seed HashSeed vmap
//	maglev  jhash <ip> saddr mod M seed HashSeed vmap over sched's Maglev
//	        table of size M (MaglevTableSize): removing an endpoint moves
//	        only the clients that were on it (plus ~1/M)
//	lc,wlc  need per-connection counts nft does not keep: with a
//	        UserspacePort they are redirected there; without one they are
//	        dispatched like rr
//
// One endpoint is a plain goto whatever the scheduler. The numgen counter of
// rr and wrr restarts when the chain is rewritten.
func (s *settings) dispatchRule(sp *servicemap.ServicePort, eps []servicemap.Endpoint, chainOf func(servicemap.Endpoint) string) string {
	if len(eps) == 1 {
		return "goto " + chainOf(eps[0])
	}
	switch sp.Scheduler {
	case "wrr":
		return "numgen inc mod " + s.vmap(wrrSlots(eps, s.wrrMaxSlots), eps, chainOf)
	case "rr", "lc", "wlc":
		return "numgen inc mod " + s.vmap(identity(len(eps)), eps, chainOf)
	case "sh":
		return s.hashExpr(len(eps)) + s.vmapBody(identity(len(eps)), eps, chainOf)
	case "maglev":
		if len(eps) < s.maglevSize {
			return s.hashExpr(s.maglevSize) + s.vmapBody(maglevSlots(eps, s.maglevSize), eps, chainOf)
		}
		// More endpoints than table slots: plain source hashing.
		return s.hashExpr(len(eps)) + s.vmapBody(identity(len(eps)), eps, chainOf)
	default: // random
		return "numgen random mod " + s.vmap(blockSlots(eps, s.wrrMaxSlots), eps, chainOf)
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
