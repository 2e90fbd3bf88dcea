package sched

// WeightedRoundRobin is smooth weighted round robin (the nginx algorithm):
// over every cycle of sum(weights) picks, each endpoint is picked exactly
// weight times, and the picks of a heavy endpoint are spread out rather than
// bunched. A pick is O(number of endpoints).
type WeightedRoundRobin struct {
	eps     []Endpoint
	current []int
	total   int
}

// NewWeightedRoundRobin returns a smooth weighted round-robin scheduler.
func NewWeightedRoundRobin(eps []Endpoint) *WeightedRoundRobin {
	w := &WeightedRoundRobin{eps: active(eps)}
	w.current = make([]int, len(w.eps))
	for _, ep := range w.eps {
		w.total += ep.Weight
	}
	return w
}

// Pick raises every endpoint's current score by its weight, picks the
// highest score (the earliest endpoint on ties) and lowers it by the total.
func (w *WeightedRoundRobin) Pick(Flow) (Endpoint, bool) {
	if len(w.eps) == 0 {
		return Endpoint{}, false
	}
	best := 0
	for i, ep := range w.eps {
		w.current[i] += ep.Weight
		if w.current[i] > w.current[best] {
			best = i
		}
	}
	w.current[best] -= w.total
	return w.eps[best], true
}
