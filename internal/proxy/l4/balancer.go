package l4

import (
	"net/netip"
	"sync"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// balancer is the scheduling state of one service: its scheduler and the
// per-endpoint counters. It is safe for concurrent use; every call to the
// scheduler happens under mu.
//
// counts[addr].active mirrors, for every endpoint, the picks not yet
// released with done. It is the truth from which a new lc/wlc scheduler is
// seeded when the endpoints change, so it also covers removed endpoints
// until their last connection ends.
type balancer struct {
	mu         sync.Mutex
	name       string
	eps        []sched.Endpoint
	eligible   int
	sched      sched.Scheduler
	tracker    sched.ConnTracker // sched when it counts connections, else nil
	counts     map[netip.AddrPort]*counters
	noEndpoint uint64
	evictions  uint64
}

// counters are one endpoint's numbers.
type counters struct {
	weight       int
	active       int
	total        uint64
	dialFailures uint64
	configured   bool
}

// newBalancer returns a balancer with no endpoints; call update to give it
// some.
func newBalancer() *balancer {
	return &balancer{counts: make(map[netip.AddrPort]*counters)}
}

// update swaps in s, built by sched.New(name, eps, ...), carrying the active
// counts of the endpoints that remain into it. It returns the endpoints that
// were configured before and are not now, and false if the counts could not
// be carried over in full (see seed).
func (b *balancer) update(name string, eps []sched.Endpoint, s sched.Scheduler) (removed []netip.AddrPort, seeded bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seeded = true
	tracker, _ := s.(sched.ConnTracker)
	if tracker != nil {
		seeded = seed(tracker, eps, func(a netip.AddrPort) int {
			if c := b.counts[a]; c != nil {
				return c.active
			}
			return 0
		})
	}
	b.name, b.eps, b.sched, b.tracker = name, eps, s, tracker
	b.eligible = 0
	now := make(map[netip.AddrPort]bool, len(eps))
	for _, ep := range eps {
		now[ep.Addr] = true
		c := b.counts[ep.Addr]
		if c == nil {
			c = &counters{}
			b.counts[ep.Addr] = c
		}
		c.weight, c.configured = ep.Weight, true
		if ep.Weight > 0 {
			b.eligible++
		}
	}
	for a, c := range b.counts {
		if now[a] || !c.configured {
			continue
		}
		removed = append(removed, a)
		c.configured = false
		if c.active == 0 {
			delete(b.counts, a)
		}
	}
	return removed, seeded
}

// seedPickLimit bounds the picks seed replays.
const seedPickLimit = 1 << 22

// seed makes t, freshly built over eps, count active(ep) connections for
// every endpoint with a positive weight. sched.LeastConn can only be
// steered through Pick and Done: Pick raises the least loaded endpoint, so
// picking until every endpoint has reached its target and then releasing
// the surplus leaves exactly the targets. It returns false if it gave up
// after seedPickLimit picks, leaving some counts short.
func seed(t sched.ConnTracker, eps []sched.Endpoint, active func(netip.AddrPort) int) bool {
	want := make(map[netip.AddrPort]int)
	byAddr := make(map[netip.AddrPort]sched.Endpoint, len(eps))
	missing := 0
	for _, ep := range eps {
		byAddr[ep.Addr] = ep
		if n := active(ep.Addr); ep.Weight > 0 && n > 0 {
			want[ep.Addr] = n
			missing++
		}
	}
	got := make(map[netip.AddrPort]int)
	for picks := 0; missing > 0 && picks < seedPickLimit; picks++ {
		ep, ok := t.Pick(sched.Flow{})
		if !ok {
			break
		}
		got[ep.Addr]++
		if got[ep.Addr] == want[ep.Addr] {
			missing--
		}
	}
	for a, n := range got {
		for ; n > want[a]; n-- {
			t.Done(byAddr[a])
		}
	}
	return missing == 0
}

// pick schedules a new connection and counts it as active on the endpoint
// returned. The caller must call done for it exactly once.
func (b *balancer) pick(f sched.Flow) (sched.Endpoint, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sched == nil {
		return sched.Endpoint{}, false
	}
	ep, ok := b.sched.Pick(f)
	if ok {
		b.counts[ep.Addr].active++
	}
	return ep, ok
}

// done releases a pick.
func (b *balancer) done(ep sched.Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.counts[ep.Addr]
	if c == nil || c.active == 0 {
		return
	}
	c.active--
	if b.tracker != nil {
		// sched ignores endpoints it does not schedule (removed or
		// weight 0), whose picks were never counted by this scheduler.
		b.tracker.Done(ep)
	}
	if c.active == 0 && !c.configured {
		delete(b.counts, ep.Addr)
	}
}

// eligibleCount returns the number of endpoints that can be picked.
func (b *balancer) eligibleCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eligible
}

// connected counts an established connection or session to ep.
func (b *balancer) connected(ep sched.Endpoint) {
	b.bump(ep, func(c *counters) { c.total++ })
}

// dialFailed counts a failed attempt to connect to ep.
func (b *balancer) dialFailed(ep sched.Endpoint) {
	b.bump(ep, func(c *counters) { c.dialFailures++ })
}

func (b *balancer) bump(ep sched.Endpoint, f func(*counters)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.counts[ep.Addr]; c != nil {
		f(c)
	}
}

// unreachable counts a connection or datagram given up for want of an
// endpoint.
func (b *balancer) unreachable() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noEndpoint++
}

// evicted counts a UDP session ended to make room for a new client.
func (b *balancer) evicted() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evictions++
}

// isConfigured reports whether a is an endpoint of the service now.
func (b *balancer) isConfigured(a netip.AddrPort) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.counts[a]
	return c != nil && c.configured
}

// stats fills in the scheduling part of s.
func (b *balancer) stats(s *ServiceStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.Scheduler = b.name
	s.NoEndpoint = b.noEndpoint
	s.UDPEvicted = b.evictions
	seen := make(map[netip.AddrPort]bool, len(b.eps))
	for _, ep := range b.eps {
		seen[ep.Addr] = true
		s.Endpoints = append(s.Endpoints, b.counts[ep.Addr].snapshot(ep.Addr))
	}
	var gone []EndpointStats
	for a, c := range b.counts {
		if !seen[a] {
			gone = append(gone, c.snapshot(a))
		}
	}
	sortEndpointStats(gone)
	s.Endpoints = append(s.Endpoints, gone...)
}

func (c *counters) snapshot(a netip.AddrPort) EndpointStats {
	return EndpointStats{Addr: a, Weight: c.weight, Active: c.active, Total: c.total, DialFailures: c.dialFailures, Removed: !c.configured}
}
