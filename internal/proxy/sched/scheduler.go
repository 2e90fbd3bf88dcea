package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
)

// Flow identifies a new connection to schedule.
type Flow struct {
	SrcIP   netip.Addr
	SrcPort uint16
}

// Endpoint is one backend of a service.
type Endpoint struct {
	Addr   netip.AddrPort
	Weight int
}

// Scheduler picks the endpoint for a new flow. ok is false when there is no
// endpoint with a positive weight.
type Scheduler interface {
	Pick(flow Flow) (ep Endpoint, ok bool)
}

// ConnTracker is implemented by schedulers that count active connections
// (lc, wlc). The caller reports Done when a connection picked by Pick ends.
type ConnTracker interface {
	Scheduler
	Done(ep Endpoint)
}

// Options tunes the schedulers that need more than endpoints.
type Options struct {
	// Rand is the random source of "random". Required for it; unused by
	// the others.
	Rand rand.Source
	// MaglevTableSize is the Maglev lookup table size. It must be a prime
	// larger than the number of endpoints; 0 means DefaultMaglevTableSize.
	MaglevTableSize int
	// HashPort makes sh and maglev hash the source port as well as the
	// source IP (IPVS's sh-port / mh-port flags).
	HashPort bool
}

// Names lists the scheduler names New accepts.
func Names() []string {
	return []string{"rr", "wrr", "lc", "wlc", "sh", "random", "maglev"}
}

// New returns the scheduler called name over eps.
func New(name string, eps []Endpoint, opts Options) (Scheduler, error) {
	if err := checkEndpoints(eps); err != nil {
		return nil, err
	}
	switch name {
	case "rr":
		return NewRoundRobin(eps), nil
	case "wrr":
		return NewWeightedRoundRobin(eps), nil
	case "lc":
		return NewLeastConn(eps, false), nil
	case "wlc":
		return NewLeastConn(eps, true), nil
	case "sh":
		return NewSourceHash(eps, opts.HashPort), nil
	case "random":
		if opts.Rand == nil {
			return nil, fmt.Errorf("scheduler random: Options.Rand is required")
		}
		return NewRandom(eps, opts.Rand), nil
	case "maglev":
		return NewMaglev(eps, opts.MaglevTableSize, opts.HashPort)
	}
	return nil, fmt.Errorf("scheduler %q is not one of %s", name, strings.Join(Names(), ", "))
}

// checkEndpoints rejects negative weights, invalid and duplicate addresses.
func checkEndpoints(eps []Endpoint) error {
	seen := make(map[netip.AddrPort]bool, len(eps))
	for i, ep := range eps {
		if !ep.Addr.IsValid() {
			return fmt.Errorf("endpoint %d: invalid address", i)
		}
		if ep.Weight < 0 {
			return fmt.Errorf("endpoint %s: negative weight %d", ep.Addr, ep.Weight)
		}
		if seen[ep.Addr] {
			return fmt.Errorf("endpoint %s: listed twice", ep.Addr)
		}
		seen[ep.Addr] = true
	}
	return nil
}

// active returns a copy of the endpoints with a positive weight, in order.
func active(eps []Endpoint) []Endpoint {
	return slices.DeleteFunc(slices.Clone(eps), func(ep Endpoint) bool { return ep.Weight <= 0 })
}
