package sched

// RoundRobin hands out the endpoints with a positive weight in order,
// one each, ignoring the weight's size (IPVS rr).
type RoundRobin struct {
	eps  []Endpoint
	next int
}

// NewRoundRobin returns a round-robin scheduler starting at the first
// endpoint. The constructors other than New do not validate endpoints.
func NewRoundRobin(eps []Endpoint) *RoundRobin {
	return &RoundRobin{eps: active(eps)}
}

// Pick returns the next endpoint in turn.
func (r *RoundRobin) Pick(Flow) (Endpoint, bool) {
	if len(r.eps) == 0 {
		return Endpoint{}, false
	}
	ep := r.eps[r.next]
	r.next = (r.next + 1) % len(r.eps)
	return ep, true
}
