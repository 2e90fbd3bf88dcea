package sched

import (
	"fmt"
	"slices"
)

// DefaultMaglevTableSize is the default Maglev lookup table size, a prime.
const DefaultMaglevTableSize = 65537

// Seeds of Maglev's two endpoint hashes (offset and skip).
const (
	maglevOffsetSeed = 0x6d61676c65762d6f // "maglev-o"
	maglevSkipSeed   = 0x6d61676c65762d73 // "maglev-s"
)

// Maglev is Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016;
// IPVS mh): each endpoint walks its own permutation of a prime-sized table
// and claims free slots in turn, so every endpoint owns close to 1/N of the
// slots and removing one of N endpoints moves little more than its own
// ~1/N of flows. Weighted endpoints claim weight/gcd slots per turn.
// A pick is one hash and one table lookup.
//
// The table depends only on the set of endpoints and their weights, not on
// the order they are given in.
type Maglev struct {
	eps      []Endpoint // positive-weight endpoints sorted by address
	table    []int      // slot -> index into eps
	withPort bool
}

// NewMaglev builds a Maglev table of size m (0 means
// DefaultMaglevTableSize). m must be a prime larger than the number of
// positive-weight endpoints.
func NewMaglev(eps []Endpoint, m int, withPort bool) (*Maglev, error) {
	if m == 0 {
		m = DefaultMaglevTableSize
	}
	live := active(eps)
	slices.SortFunc(live, func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) })
	if !isPrime(m) {
		return nil, fmt.Errorf("maglev table size %d is not a prime", m)
	}
	if m <= len(live) {
		return nil, fmt.Errorf("maglev table size %d must exceed the number of endpoints (%d)", m, len(live))
	}
	g := &Maglev{eps: live, withPort: withPort}
	if len(live) > 0 {
		g.table = populate(live, m)
	}
	return g, nil
}

// populate fills the lookup table (Maglev paper, Pseudocode 1, extended
// with per-round turns for weights as IPVS mh does).
func populate(eps []Endpoint, m int) []int {
	n := len(eps)
	offset := make([]int, n)
	skip := make([]int, n)
	next := make([]int, n)
	turns := make([]int, n)
	g := 0
	for _, ep := range eps {
		g = gcd(g, ep.Weight)
	}
	for i, ep := range eps {
		offset[i] = int(addrHash(maglevOffsetSeed, ep.Addr) % uint64(m))
		skip[i] = int(addrHash(maglevSkipSeed, ep.Addr)%uint64(m-1)) + 1
		turns[i] = ep.Weight / g
	}
	table := make([]int, m)
	for i := range table {
		table[i] = -1
	}
	filled := 0
	for {
		for i := range n {
			for range turns[i] {
				// next[i] < m always: endpoint i's permutation visits
				// every slot, and a free slot remains.
				c := (offset[i] + next[i]*skip[i]) % m
				for table[c] >= 0 {
					next[i]++
					c = (offset[i] + next[i]*skip[i]) % m
				}
				table[c] = i
				next[i]++
				filled++
				if filled == m {
					return table
				}
			}
		}
	}
}

// Pick looks the flow's hash up in the table.
func (g *Maglev) Pick(f Flow) (Endpoint, bool) {
	if len(g.table) == 0 {
		return Endpoint{}, false
	}
	return g.eps[g.table[flowHash(f, g.withPort)%uint64(len(g.table))]], true
}

// Table returns a copy of the lookup table: slot -> index into Endpoints().
// A data plane that hashes flows the same way (see Slot) can install it as
// a map. It is nil when there are no endpoints.
func (g *Maglev) Table() []int {
	return slices.Clone(g.table)
}

// Endpoints returns the endpoints Table indexes: those with a positive
// weight, sorted by address.
func (g *Maglev) Endpoints() []Endpoint {
	return slices.Clone(g.eps)
}

// Slot returns the table slot a flow hashes to (or -1 with no endpoints).
func (g *Maglev) Slot(f Flow) int {
	if len(g.table) == 0 {
		return -1
	}
	return int(flowHash(f, g.withPort) % uint64(len(g.table)))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
