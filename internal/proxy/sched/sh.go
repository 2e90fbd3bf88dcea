package sched

import "slices"

// SourceHash maps each flow's source IP (and port, if asked) through a
// fixed bucket table, as IPVS sh does: while the endpoint set is unchanged,
// the same client always gets the same endpoint. Buckets are shared out in
// proportion to weight, in address order, so the table does not depend on
// the order endpoints are given in. Unlike Maglev, changing the endpoint set may move
// most clients. A pick is O(1).
type SourceHash struct {
	table    []Endpoint
	withPort bool
}

// shMinBuckets is IPVS's default sh table size (IP_VS_SH_TAB_BITS = 8).
const shMinBuckets = 256

// NewSourceHash returns a source-hash scheduler. The table has 256 buckets,
// or 4 per endpoint when there are more than 64 endpoints.
func NewSourceHash(eps []Endpoint, withPort bool) *SourceHash {
	s := &SourceHash{withPort: withPort}
	live := active(eps)
	slices.SortFunc(live, func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) })
	if len(live) == 0 {
		return s
	}
	n := max(shMinBuckets, 4*len(live))
	wrr := NewWeightedRoundRobin(live)
	s.table = make([]Endpoint, n)
	for i := range s.table {
		s.table[i], _ = wrr.Pick(Flow{})
	}
	return s
}

// Pick returns the endpoint of the flow's bucket.
func (s *SourceHash) Pick(f Flow) (Endpoint, bool) {
	if len(s.table) == 0 {
		return Endpoint{}, false
	}
	return s.table[flowHash(f, s.withPort)%uint64(len(s.table))], true
}
