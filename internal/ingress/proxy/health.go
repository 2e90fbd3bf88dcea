package proxy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// HealthOptions tune passive health checking: an endpoint that fails
// MaxFails times in a row (connection errors and timeouts, as counted by
// proxy-next-upstream) is ejected for Backoff; each further ejection
// without a success in between doubles the backoff up to MaxBackoff. A
// success resets the endpoint.
type HealthOptions struct {
	MaxFails   int           // default 3
	Backoff    time.Duration // default 1s
	MaxBackoff time.Duration // default 30s
}

func (o HealthOptions) withDefaults() HealthOptions {
	if o.MaxFails <= 0 {
		o.MaxFails = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(30*time.Second, o.Backoff)
	}
	return o
}

// health remembers failures per endpoint address. It outlives Snapshots,
// so an ejected endpoint stays ejected across a Swap.
type health struct {
	opts    HealthOptions
	now     func() time.Time
	tracked atomic.Int64 // len(eps), read without the lock on the hot path
	mu      sync.Mutex
	eps     map[netip.AddrPort]*epHealth
}

type epHealth struct {
	fails     int       // consecutive failures
	ejections int       // consecutive ejections, for the backoff
	until     time.Time // ejected until
}

func newHealth(opts HealthOptions, now func() time.Time) *health {
	return &health{opts: opts.withDefaults(), now: now, eps: map[netip.AddrPort]*epHealth{}}
}

// ejected reports whether ep is currently ejected.
func (h *health) ejected(ep netip.AddrPort) bool {
	if h.tracked.Load() == 0 {
		return false // nothing has failed: the common case, lock-free
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.eps[ep]
	return e != nil && h.now().Before(e.until)
}

// success resets ep.
func (h *health) success(ep netip.AddrPort) {
	if h.tracked.Load() == 0 {
		return // nothing has failed: lock-free, like ejected
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.eps[ep]; ok {
		delete(h.eps, ep)
		h.tracked.Store(int64(len(h.eps)))
	}
}

// keepOnly forgets endpoints not in keep (they left the cluster).
func (h *health) keepOnly(keep map[netip.AddrPort]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ep := range h.eps {
		if !keep[ep] {
			delete(h.eps, ep)
		}
	}
	h.tracked.Store(int64(len(h.eps)))
}

// failure counts a failure and reports whether it ejected ep.
func (h *health) failure(ep netip.AddrPort) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.eps[ep]
	if e == nil {
		e = &epHealth{}
		h.eps[ep] = e
		h.tracked.Store(int64(len(h.eps)))
	}
	e.fails++
	if e.fails < h.opts.MaxFails {
		return false
	}
	backoff := h.opts.Backoff << min(e.ejections, 16)
	if backoff > h.opts.MaxBackoff || backoff <= 0 {
		backoff = h.opts.MaxBackoff
	}
	e.ejections++
	e.fails = 0
	e.until = h.now().Add(backoff)
	return true
}
