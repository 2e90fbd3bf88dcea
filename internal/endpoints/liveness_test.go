package endpoints

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/objects"
)

func testLease(node string, seconds int32) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: LeaseNamespace},
		Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: &seconds}}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

// leaseCache is a cache with one service selecting one pod per node (n1..n3), every
// node alive with a 4 s Lease, its slice written back: nothing is dirty.
func leaseCache(t *testing.T, clk *fakeClock) *cache {
	t.Helper()
	c := newCache(clk.now)
	svc := testService("web", map[string]string{"app": "web"}, port("http", 80, intstr.FromInt32(80)))
	c.replace(kindService, []objects.Object{svc})
	c.replace(kindSlice, nil)
	c.replace(kindLease, []objects.Object{testLease("n1", 4), testLease("n2", 4), testLease("n3", 4)})
	c.replace(kindPod, []objects.Object{testPod("a", "10.244.1.2", "n1", true), testPod("b", "10.244.2.2", "n2", true), testPod("c", "10.244.3.2", "n3", true)})
	p, _, ok := c.takePlan()
	if !ok || len(p.Apply) != 1 {
		t.Fatalf("first plan %+v", p)
	}
	for _, es := range p.Apply {
		c.update(es, false)
	}
	if p, covered, _ := c.takePlan(); !p.Empty() {
		t.Fatalf("plan after writing back: %+v (%v)", p, covered)
	}
	return c
}

// ready lists the endpoints a plan's slices mark ready.
func readyIn(t *testing.T, p Plan) map[string]bool {
	t.Helper()
	if len(p.Apply) != 1 {
		t.Fatalf("want one slice written, plan %+v", p)
	}
	out := map[string]bool{}
	for _, ep := range p.Apply[0].Endpoints {
		if *ep.Conditions.Ready {
			out[*ep.NodeName] = true
		}
	}
	return out
}

// renew delivers a renewal of each node's Lease every 4/3 s for d, as live agents do.
func renew(c *cache, clk *fakeClock, d time.Duration, nodes ...string) {
	for end := clk.t.Add(d); clk.t.Before(end); {
		clk.add(4 * time.Second / 3 / time.Duration(len(nodes)))
		for _, n := range nodes {
			c.update(testLease(n, 4), false)
		}
	}
}

// A node whose Lease expires while the others keep renewing (a partition, a crash)
// loses its endpoints at once.
func TestLivenessNodeLostWhileStoreWorks(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := leaseCache(t, clk)
	renew(c, clk, 10*time.Second, "n1", "n2", "n3")
	renew(c, clk, 3*time.Second, "n1", "n2") // n3 is silent; etcd expires its Lease
	c.update(testLease("n3", 4), true)
	p, _, _ := c.takePlan()
	if got := readyIn(t, p); got["n3"] || !got["n1"] || !got["n2"] {
		t.Fatalf("ready after n3's Lease expired: %v; want n1 and n2 only", got)
	}
	if !c.nextLivenessChange().IsZero() {
		t.Fatal("a grace is pending for a node lost while the store worked")
	}
}

// After the store was stopped for a minute, etcd revokes every Lease at once although
// every agent is alive: no endpoint may go unready while the agents put their Leases
// back. A node that does not come back within one Lease duration is dropped then.
func TestLivenessStoreOutageDoesNotFlap(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := leaseCache(t, clk)
	renew(c, clk, 10*time.Second, "n1", "n2", "n3")
	clk.add(60 * time.Second) // the store is frozen: no events at all
	for _, n := range []string{"n1", "n2", "n3"} {
		c.update(testLease(n, 4), true) // revoked on resume, one after the other
		clk.add(100 * time.Millisecond)
	}
	if p, covered, _ := c.takePlan(); !p.Empty() {
		t.Fatalf("the revocations after an outage changed the slices: %+v (%v)", p, covered)
	}
	// The agents notice and put their Leases back; n3's agent does not.
	clk.add(500 * time.Millisecond)
	c.update(testLease("n1", 4), false)
	clk.add(200 * time.Millisecond)
	c.update(testLease("n2", 4), false)
	if p, covered, _ := c.takePlan(); !p.Empty() {
		t.Fatalf("Leases coming back changed the slices: %+v (%v)", p, covered)
	}
	next := c.nextLivenessChange()
	if next.IsZero() || next.After(clk.t.Add(4*time.Second)) {
		t.Fatalf("n3's grace ends at %v; want within one Lease duration of %v", next, clk.t)
	}
	renew(c, clk, next.Sub(clk.t), "n1", "n2")
	p, _, _ := c.takePlan()
	if got := readyIn(t, p); got["n3"] || !got["n1"] || !got["n2"] {
		t.Fatalf("ready once n3's grace ran out: %v; want n1 and n2 only", got)
	}
}

// A clean stop of an agent gives its Lease back: the node goes at once, also long
// after any stall.
func TestLivenessGivenBackLease(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := leaseCache(t, clk)
	clk.add(time.Minute)
	renew(c, clk, 10*time.Second, "n1", "n2", "n3")
	c.update(testLease("n2", 4), true)
	p, _, _ := c.takePlan()
	if got := readyIn(t, p); got["n2"] {
		t.Fatalf("n2 still ready after giving its Lease back: %v", got)
	}
}

// The rule on its own: a short silence is no stall, the window after a stall lasts one
// Lease duration, and a renewal ends a grace.
func TestLivenessRules(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const d = 4 * time.Second
	l := newLiveness()
	// n9 renews every second from from to to (exclusive), as a live node does.
	keep := func(from, to float64) {
		for s := from; s < to; s++ {
			l.seen("n9", d, at(s))
		}
	}
	l.seen("n1", d, at(0))
	l.seen("n2", d, at(0.5))
	l.gone("n2", d, at(2.4)) // 1.9 s of silence: less than half of 4 s
	if l.alive("n2", at(2.4)) {
		t.Fatal("a 1.9 s silence was taken for a stall")
	}
	l.seen("n2", d, at(10)) // 7.6 s of silence: a stall ends at 10 s
	keep(11, 14)
	l.gone("n1", d, at(13.9)) // within one Lease duration of the stall
	if !l.alive("n1", at(17.8)) || l.alive("n1", at(17.9)) {
		t.Fatal("a Lease gone 3.9 s after a stall gets exactly one Lease duration")
	}
	if next := l.next(); !next.Equal(at(17.9)) {
		t.Fatalf("next change at %v, want %v", next, at(17.9))
	}
	keep(14, 15)
	l.seen("n1", d, at(15))
	if alive, expired := l.set(at(15)); !alive["n1"] || expired || !l.next().IsZero() {
		t.Fatalf("a renewal ends the grace: alive %v expired %v next %v", alive, expired, l.next())
	}
	keep(16, 30)
	l.gone("n1", d, at(30)) // long after the stall
	if l.alive("n1", at(30)) {
		t.Fatal("a Lease gone long after the stall got a grace")
	}
	// A grace that runs out is reported once.
	l.seen("n1", d, at(40)) // after 10 s of silence: a stall
	l.gone("n1", d, at(40.5))
	if alive, expired := l.set(at(44.4)); !alive["n1"] || expired {
		t.Fatalf("before the grace ends: alive %v expired %v", alive, expired)
	}
	if alive, expired := l.set(at(44.5)); alive["n1"] || !expired {
		t.Fatalf("when the grace ends: alive %v expired %v", alive, expired)
	}
	if _, expired := l.set(at(45)); expired {
		t.Fatal("an ended grace was reported twice")
	}
}
