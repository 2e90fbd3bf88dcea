package proxy

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// balancer picks endpoints round robin, skipping ejected endpoints and
// those already tried for the request. Its counters are per upstream and
// outlive Snapshots, so a Swap does not reset the rotation.
type balancer struct {
	health *health
	next   sync.Map // UpstreamKey -> *atomic.Uint64
}

func newBalancer(opts HealthOptions, now func() time.Time) *balancer {
	return &balancer{health: newHealth(opts, now)}
}

func (b *balancer) counter(k UpstreamKey) *atomic.Uint64 {
	if c, ok := b.next.Load(k); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := b.next.LoadOrStore(k, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// keepOnly forgets the state of upstreams and endpoints that are gone
// and returns the endpoints that remain.
func (b *balancer) keepOnly(ups map[UpstreamKey]Upstream) map[netip.AddrPort]bool {
	eps := map[netip.AddrPort]bool{}
	for _, u := range ups {
		for _, ep := range u.Endpoints {
			eps[ep] = true
		}
	}
	b.health.keepOnly(eps)
	b.next.Range(func(k, _ any) bool {
		if _, ok := ups[k.(UpstreamKey)]; !ok {
			b.next.Delete(k)
		}
		return true
	})
	return eps
}

// pick returns the next endpoint of eps for upstream k that is neither
// ejected nor in tried. When every untried endpoint is ejected it returns
// one of them anyway (better a likely failure than a certain 503); when
// every endpoint was tried it starts over, so that a single-endpoint
// upstream can still be retried on a fresh connection.
func (b *balancer) pick(k UpstreamKey, eps []netip.AddrPort, tried []netip.AddrPort) (netip.AddrPort, bool) {
	return b.pickWith(b.counter(k), eps, tried)
}

// pickWith is pick with the upstream's counter already looked up.
func (b *balancer) pickWith(rr *atomic.Uint64, eps []netip.AddrPort, tried []netip.AddrPort) (netip.AddrPort, bool) {
	n := len(eps)
	if n == 0 {
		return netip.AddrPort{}, false
	}
	start := int(rr.Add(1)-1) % n
	var fallback netip.AddrPort
	haveFallback := false
	for i := 0; i < n; i++ {
		ep := eps[(start+i)%n]
		if slices.Contains(tried, ep) {
			continue
		}
		if b.health.ejected(ep) {
			if !haveFallback {
				fallback, haveFallback = ep, true
			}
			continue
		}
		return ep, true
	}
	if haveFallback {
		return fallback, true
	}
	return eps[start], true
}
