package latency

import (
	"sort"
	"time"
)

// Stats summarises the round trips of one pair.
type Stats struct {
	Sent     int           `json:"sent"`
	Received int           `json:"received"`
	Loss     float64       `json:"lossPercent"`
	Min      time.Duration `json:"minNs"`
	P50      time.Duration `json:"p50Ns"`
	P99      time.Duration `json:"p99Ns"`
	Max      time.Duration `json:"maxNs"`
	// Jitter is the mean absolute difference between consecutive round trips (the
	// packet-delay variation RFC 3550 smooths; here unsmoothed over the run).
	Jitter time.Duration `json:"jitterNs"`
}

// Summarise computes Stats from the samples of sent probes; a negative sample is a
// lost probe. Percentiles use the nearest rank.
func Summarise(samples []time.Duration) Stats {
	s := Stats{Sent: len(samples)}
	var ok []time.Duration
	var jitter time.Duration
	var prev time.Duration = -1
	jumps := 0
	for _, d := range samples {
		if d < 0 {
			continue
		}
		ok = append(ok, d)
		if prev >= 0 {
			diff := d - prev
			if diff < 0 {
				diff = -diff
			}
			jitter += diff
			jumps++
		}
		prev = d
	}
	s.Received = len(ok)
	if s.Sent > 0 {
		s.Loss = 100 * float64(s.Sent-s.Received) / float64(s.Sent)
	}
	if len(ok) == 0 {
		return s
	}
	if jumps > 0 {
		s.Jitter = jitter / time.Duration(jumps)
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i] < ok[j] })
	s.Min, s.Max = ok[0], ok[len(ok)-1]
	s.P50, s.P99 = rank(ok, 50), rank(ok, 99)
	return s
}

// rank is the nearest-rank percentile of sorted samples.
func rank(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	if i < 1 {
		i = 1
	}
	return sorted[i-1]
}

// SumSamples adds hop samples index by index: sample k of a chain is the sum of sample
// k of every hop (lost if any hop lost it).
func SumSamples(hops [][]time.Duration) []time.Duration {
	if len(hops) == 0 {
		return nil
	}
	n := len(hops[0])
	for _, h := range hops {
		n = min(n, len(h))
	}
	out := make([]time.Duration, n)
	for k := 0; k < n; k++ {
		for _, h := range hops {
			if h[k] < 0 || out[k] < 0 {
				out[k] = -1
				continue
			}
			out[k] += h[k]
		}
	}
	return out
}
