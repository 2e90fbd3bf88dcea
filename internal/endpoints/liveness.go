package endpoints

import (
	"time"
)

// defaultLeaseDuration stands for a Lease that does not say how long it lasts (the
// agent's default --lease-ttl).
const defaultLeaseDuration = 15 * time.Second

// liveness decides which nodes are alive from their Leases, as the informer delivers
// them. A node is alive while its Lease exists: its agent renews it every quarter of
// the Lease's duration, and etcd deletes it when the renewals stop for that long.
//
// One exception keeps a store outage from looking like every node dying. While etcd
// is stopped or unreachable nothing is renewed, and when it comes back it revokes every
// Lease whose time ran out meanwhile, all at once, although every agent is alive and
// grants itself a new one within a second. The Lease events show the difference: in a
// healthy cluster every live node renews, so an event arrives at least every quarter
// of a Lease's duration; a Lease can only expire during an outage if nothing arrived
// for more than three quarters of one. So when a Lease disappears within one Lease duration after
// a silence longer than half of one (a stall: the store, or this process's view of it,
// stopped), the node keeps counting as alive for one more Lease duration, time for its
// agent to come back. A node cut off while the store works (a partition, a crash) is
// dropped as soon as its Lease expires, as before.
//
// All times are the caller's (the informer's delivery times on its clock), so the
// rules are deterministic to test.
type liveness struct {
	leases    map[string]time.Duration // nodes whose Lease exists → its duration
	grace     map[string]time.Time     // nodes whose Lease vanished after a stall → alive until
	lastEvent time.Time                // when the last Lease event arrived (zero: none yet)
	stallEnd  time.Time                // when the last stall ended
}

func newLiveness() *liveness {
	return &liveness{leases: map[string]time.Duration{}, grace: map[string]time.Time{}}
}

// seen records that node's Lease exists (created or renewed) with duration d (0 =
// unknown).
func (l *liveness) seen(node string, d time.Duration, now time.Time) {
	l.event(now)
	if d <= 0 {
		d = defaultLeaseDuration
	}
	l.leases[node] = d
	delete(l.grace, node)
}

// gone records that node's Lease was deleted (expired, or given back by its agent).
func (l *liveness) gone(node string, d time.Duration, now time.Time) {
	l.event(now)
	if d <= 0 {
		d = l.leases[node]
	}
	if d <= 0 {
		d = defaultLeaseDuration
	}
	delete(l.leases, node)
	if !l.stallEnd.IsZero() && now.Sub(l.stallEnd) < d {
		l.grace[node] = now.Add(d)
	}
}

// event notes a Lease event's arrival; a silence longer than half the shortest known
// Lease duration before it was a stall, which ends now.
func (l *liveness) event(now time.Time) {
	if !l.lastEvent.IsZero() && now.Sub(l.lastEvent) > l.shortest()/2 {
		l.stallEnd = now
	}
	l.lastEvent = now
}

func (l *liveness) shortest() time.Duration {
	d := time.Duration(0)
	for _, x := range l.leases {
		if d == 0 || x < d {
			d = x
		}
	}
	if d == 0 {
		d = defaultLeaseDuration
	}
	return d
}

// reset forgets every Lease (a fresh list follows); graces and the event history stay.
func (l *liveness) reset() { l.leases = map[string]time.Duration{} }

// alive reports whether node counts as alive at now.
func (l *liveness) alive(node string, now time.Time) bool {
	if _, ok := l.leases[node]; ok {
		return true
	}
	until, ok := l.grace[node]
	return ok && now.Before(until)
}

// set returns every node alive at now, and drops graces that have run out, reporting
// whether any did (their nodes just died).
func (l *liveness) set(now time.Time) (alive map[string]bool, expired bool) {
	alive = make(map[string]bool, len(l.leases)+len(l.grace))
	for n := range l.leases {
		alive[n] = true
	}
	for n, until := range l.grace {
		if now.Before(until) {
			alive[n] = true
		} else {
			delete(l.grace, n)
			expired = true
		}
	}
	return alive, expired
}

// next is when the next grace runs out (zero: none pending).
func (l *liveness) next() time.Time {
	var t time.Time
	for _, until := range l.grace {
		if t.IsZero() || until.Before(t) {
			t = until
		}
	}
	return t
}
