package sched

import "net/netip"

// LeastConn picks the endpoint with the fewest active connections (lc) or
// the lowest active/weight ratio (wlc, the IPVS default). Pick counts the
// new connection against the chosen endpoint; Done releases it. Ties go to
// the earliest endpoint in the order given. A pick is O(number of
// endpoints), as in IPVS.
type LeastConn struct {
	eps      []Endpoint
	conns    []int
	index    map[netip.AddrPort]int
	weighted bool
}

// NewLeastConn returns an lc scheduler, or wlc when weighted is true.
func NewLeastConn(eps []Endpoint, weighted bool) *LeastConn {
	l := &LeastConn{eps: active(eps), weighted: weighted}
	l.conns = make([]int, len(l.eps))
	l.index = make(map[netip.AddrPort]int, len(l.eps))
	for i, ep := range l.eps {
		l.index[ep.Addr] = i
	}
	return l
}

// Pick returns the least loaded endpoint and counts one more connection on it.
func (l *LeastConn) Pick(Flow) (Endpoint, bool) {
	if len(l.eps) == 0 {
		return Endpoint{}, false
	}
	best := 0
	for i := 1; i < len(l.eps); i++ {
		if l.less(i, best) {
			best = i
		}
	}
	l.conns[best]++
	return l.eps[best], true
}

// less reports whether endpoint i is strictly less loaded than endpoint j.
// For wlc it compares conns[i]/w[i] < conns[j]/w[j] without division.
func (l *LeastConn) less(i, j int) bool {
	if !l.weighted {
		return l.conns[i] < l.conns[j]
	}
	return l.conns[i]*l.eps[j].Weight < l.conns[j]*l.eps[i].Weight
}

// Done records that a connection to ep (matched by address) has ended. Unknown endpoints and
// endpoints with no active connection are ignored.
func (l *LeastConn) Done(ep Endpoint) {
	if i, ok := l.index[ep.Addr]; ok && l.conns[i] > 0 {
		l.conns[i]--
	}
}

// Active returns the number of active connections counted for ep.
func (l *LeastConn) Active(ep Endpoint) int {
	if i, ok := l.index[ep.Addr]; ok {
		return l.conns[i]
	}
	return 0
}
