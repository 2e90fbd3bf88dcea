// Package syncrunner coalesces bursts of changes into syncs, as kube-proxy's bounded
// frequency runner does: a sync runs after a change, never more often than MinInterval,
// and at least every MaxInterval as a full resync that repairs drift. A failed sync is
// retried, as a full one, with a growing pause.
package syncrunner

import (
	"context"
	"errors"
	"time"
)

// ErrNotReady, returned by a sync, means it had nothing to work from yet (a cache
// still loading, say). It is not a sync: it neither starts the MinInterval pause nor
// causes a retry, and the next kick runs the (still full) sync at once. Without it
// the first real sync after start-up would wait MinInterval for nothing.
var ErrNotReady = errors.New("syncrunner: not ready")

// Runner schedules syncs. Kick is safe from any goroutine.
type Runner struct {
	min, max time.Duration
	kick     chan struct{}
}

// New returns a runner. min 0 means "sync on every change" (still coalescing changes
// that arrive while a sync runs).
func New(min, max time.Duration) *Runner {
	return &Runner{min: min, max: max, kick: make(chan struct{}, 1)}
}

// Kick asks for a sync soon.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run calls sync until ctx ends: once at start (full), after kicks, and every max
// (full). full is true when the caller should reconcile against the real state rather
// than only apply what changed.
func (r *Runner) Run(ctx context.Context, sync func(full bool) error) {
	resync := time.NewTicker(r.max)
	defer resync.Stop()
	pending, full := true, true
	var last time.Time
	var retry <-chan time.Time
	backoff := 100 * time.Millisecond
	for {
		if pending {
			if wait := r.min - time.Since(last); wait > 0 && !last.IsZero() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			pending = false
			prev := last
			last = time.Now()
			if err := sync(full); errors.Is(err, ErrNotReady) {
				last = prev
			} else if err != nil {
				full = true
				retry = time.After(backoff)
				backoff = min(2*backoff, r.max)
			} else {
				full = false
				retry = nil
				backoff = 100 * time.Millisecond
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			pending = true
		case <-resync.C:
			pending, full = true, true
		case <-retry:
			pending = true
		}
	}
}
