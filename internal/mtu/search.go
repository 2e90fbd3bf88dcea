// Package mtu finds the path MTU between nodes (underlay) and between pods on
// different nodes (overlay) with don't-fragment probes and a binary search, compares it
// with the MTUs the nodes are configured with, and names black holes: sizes that
// vanish without the ICMP "fragmentation needed" that would let senders adapt.
//
// Discover (the search) and Findings (the judgement) are pure: they see probes only
// through a Prober, so tests drive them with scripted networks. Run wires them to
// real probes sent from inside the lab's namespaces.
package mtu

import (
	"fmt"

	"github.com/fjord-net/fjord/internal/probe"
)

// Prober sends one don't-fragment probe of size bytes (the whole IP packet).
type Prober func(size int) (probe.Result, error)

// Search bounds one discovery.
type Search struct {
	// Lo is a size every working path carries (576 for IPv4, 1280 for IPv6); it is
	// probed first to tell "unreachable" from "small MTU".
	Lo int
	// Hi is the largest size to try: the sender's interface MTU.
	Hi int
	// Tries is how often a lost probe is sent before the size counts as lost (a
	// single lost packet is not a black hole).
	Tries int
}

// PathResult is what the search found on one path.
type PathResult struct {
	Reachable bool
	// Works is the largest size that was answered.
	Works int
	// FailedAt is the smallest size that was not (0 when Hi worked), and Failure what
	// happened to it: FragNeeded (a hop said so: PMTUD works), LocalTooBig (the sender's
	// own interface), Lost (a black hole) or Unreachable.
	FailedAt int
	Failure  probe.Outcome
	// ReportedMTU is the MTU a hop's ICMP or the sender's kernel reported (0 none).
	ReportedMTU int
	// Probes counts the probes sent.
	Probes int
}

// BlackHole reports whether packets above Works disappear silently.
func (r PathResult) BlackHole() bool { return r.Reachable && r.FailedAt > 0 && r.Failure == probe.Lost }

// Discover finds the largest size that crosses the path.
func Discover(p Prober, s Search) (PathResult, error) {
	var r PathResult
	if s.Tries < 1 {
		s.Tries = 1
	}
	if s.Lo < 68 || s.Hi < s.Lo {
		return r, fmt.Errorf("search bounds %d..%d are invalid", s.Lo, s.Hi)
	}
	send := func(size int) (probe.Result, error) {
		var res probe.Result
		var err error
		for t := 0; t < s.Tries; t++ {
			r.Probes++
			if res, err = p(size); err != nil || res.Outcome != probe.Lost {
				return res, err
			}
		}
		return res, nil
	}
	fail := func(size int, res probe.Result) {
		if r.FailedAt == 0 || size < r.FailedAt {
			r.FailedAt, r.Failure = size, res.Outcome
			if res.MTU > 0 {
				r.ReportedMTU = res.MTU
			}
		}
	}
	res, err := send(s.Lo)
	if err != nil {
		return r, err
	}
	if res.Outcome != probe.Reply {
		fail(s.Lo, res)
		return r, nil
	}
	r.Reachable, r.Works = true, s.Lo
	lo, hi := s.Lo, s.Hi+1 // lo works; hi fails (Hi+1 by definition)
	next := s.Hi
	for hi-lo > 1 {
		res, err := send(next)
		if err != nil {
			return r, err
		}
		switch {
		case res.Outcome == probe.Reply:
			lo = next
			r.Works = next
		case (res.Outcome == probe.FragNeeded || res.Outcome == probe.LocalTooBig) && res.MTU >= lo && res.MTU < next:
			// A hop (or the kernel) named its MTU: nothing bigger passes it.
			hi = res.MTU + 1
			fail(hi, res)
		default:
			hi = next
			fail(next, res)
		}
		next = lo + (hi-lo)/2
		if hi-1 > lo && (res.Outcome == probe.FragNeeded || res.Outcome == probe.LocalTooBig) && hi == res.MTU+1 {
			next = res.MTU // try exactly the named size
		}
	}
	return r, nil
}
