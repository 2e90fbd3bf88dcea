package healthcheck

import (
	"sync"
	"time"
)

// Tracker decides the service proxy's health from its sync reports. Time is
// passed in. It is safe for concurrent use.
//
// The rule is kube-proxy's (pkg/proxy/healthcheck): unhealthy once an update
// has waited longer than the timeout (kube-proxy: 2 × syncPeriod) without a
// successful sync. fjord reports syncs, not queued changes, so the update
// "waits" from the start of the first failed sync after the last success.
// One rule is added: as the sync loop resyncs every syncPeriod, a loop that
// reported nothing for the timeout (hung in a sync, or never started) is
// unhealthy too.
type Tracker struct {
	mu           sync.Mutex
	timeout      time.Duration
	created      time.Time
	lastReport   time.Time // last Synced, successful or not
	lastUpdated  time.Time // last successful sync
	failingSince time.Time // start of the first failed sync since the last success; zero when none
	nodeEligible bool
}

// NewTracker returns a Tracker created at now: healthy while it starts,
// unhealthy if nothing is reported within timeout.
func NewTracker(timeout time.Duration, now time.Time) *Tracker {
	return &Tracker{timeout: timeout, created: now, nodeEligible: true}
}

// Synced records a sync that started at started and ended at now with err.
func (t *Tracker) Synced(started, now time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastReport = now
	if err != nil {
		if t.failingSince.IsZero() {
			t.failingSince = started
		}
		return
	}
	t.failingSince = time.Time{}
	t.lastUpdated = now
}

// SetNodeEligible records whether the node should take traffic (kube-proxy:
// not being deleted, not tainted ToBeDeletedByClusterAutoscaler). Only
// /healthz looks at it.
func (t *Tracker) SetNodeEligible(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nodeEligible = ok
}

// Status is the proxy's health at one instant.
type Status struct {
	Healthy      bool
	LastUpdated  time.Time // last successful sync (zero before the first)
	NodeEligible bool
}

// Status returns the health at now.
func (t *Tracker) Status(now time.Time) Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Status{Healthy: true, LastUpdated: t.lastUpdated, NodeEligible: t.nodeEligible}
	if !t.failingSince.IsZero() && now.Sub(t.failingSince) >= t.timeout {
		s.Healthy = false
	}
	last := t.lastReport
	if last.IsZero() {
		last = t.created
	}
	if now.Sub(last) >= t.timeout {
		s.Healthy = false
	}
	return s
}
