package nftproxy

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// threeServices has three services that share nothing.
func threeServices() (a, b, c servicemap.ServicePort) {
	a = svcPort("default", "alpha", "http", servicemap.TCP, "10.96.0.21", 80, "10.244.1.21:8080@node-a", "10.244.2.21:8080")
	a.NodePort = 30021
	b = svcPort("default", "bravo", "", servicemap.UDP, "10.96.0.22", 53, "10.244.1.22:53@node-a")
	b.SessionAffinity = servicemap.SessionAffinity{ClientIP: true, TimeoutSeconds: 60}
	c = svcPort("other", "charlie", "", servicemap.TCP, "10.96.0.23", 443, "10.244.3.23:8443")
	c.ExternalIPs = []netip.Addr{addr("198.18.0.123")}
	return a, b, c
}

func lastTx(fake *knftables.Fake) string {
	fake.RLock()
	defer fake.RUnlock()
	if fake.LastTransaction == nil {
		return ""
	}
	return fake.LastTransaction.String()
}

func TestIncrementalSyncTouchesOnlyTheChangedService(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	a, b, c := threeServices()
	mustSync(t, p, mapOf(a, b, c), false)

	// bravo gains an endpoint and loses its old one.
	b2 := b
	b2.Endpoints = []servicemap.Endpoint{endpoint("10.244.2.99:53")}
	st := mustSync(t, p, mapOf(a, b2, c), false)
	tx := lastTx(fake)
	if st.Full || st.Rendered != 1 {
		t.Errorf("stats = %+v, want an incremental sync rendering 1 service port", st)
	}
	for _, other := range []string{"alpha", "charlie", "10.96.0.21", "10.96.0.23", "198.18.0.123", "30021", "services", "nat-prerouting"} {
		if strings.Contains(tx, other) {
			t.Errorf("transaction mentions %q:\n%s", other, tx)
		}
	}
	for _, want := range []string{"10.244.2.99", "flush chain ip fjord svc-", "flush chain ip fjord ep-", "delete set ip fjord aff-"} {
		if !strings.Contains(tx, want) {
			t.Errorf("transaction lacks %q:\n%s", want, tx)
		}
	}
	if strings.Contains(tx, "delete chain") || strings.Contains(tx, "flush table") || strings.Contains(tx, "delete table") {
		t.Errorf("transaction deletes a chain or the table at once:\n%s", tx)
	}
	if st.PendingDeletes != 1 {
		t.Errorf("PendingDeletes = %d, want 1 (the old endpoint chain)", st.PendingDeletes)
	}
	assertCanonical(t, p, fake, mapOf(a, b2, c), clock)
}

func TestSyncWithoutChangesRunsNothing(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	a, b, c := threeServices()
	m := mapOf(a, b, c)
	mustSync(t, p, m, false)
	before := fake.LastTransaction
	for _, full := range []bool{false, true} {
		st := mustSync(t, p, m, full)
		if st.Operations != 0 || fake.LastTransaction != before {
			t.Errorf("full=%v: sync without changes ran %d operations:\n%s", full, st.Operations, lastTx(fake))
		}
	}
}

func TestFullSyncRepairsDrift(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	a, b, c := threeServices()
	m := mapOf(a, b, c)
	tests := []struct {
		name  string
		drift func(tx *knftables.Transaction)
		want  []string // in the repairing transaction
	}{{
		name: "element deleted",
		drift: func(tx *knftables.Transaction) {
			tx.Delete(&knftables.Element{Map: serviceIPsMap, Key: []string{"10.96.0.21", "tcp", "80"}})
		},
		want: []string{"add element ip fjord service-ips { 10.96.0.21 . tcp . 80 : goto svc-"},
	}, {
		name: "element with a wrong value",
		drift: func(tx *knftables.Transaction) {
			tx.Add(&knftables.Element{Map: serviceNodePortsMap, Key: []string{"tcp", "30021"}, Value: []string{"drop"}})
		},
		want: []string{"delete element ip fjord service-nodeports { tcp . 30021 }", "add element ip fjord service-nodeports { tcp . 30021 : goto ext-"},
	}, {
		name: "foreign element",
		drift: func(tx *knftables.Transaction) {
			tx.Add(&knftables.Element{Set: clusterIPsSet, Key: []string{"10.96.9.9"}})
		},
		want: []string{"delete element ip fjord cluster-ips { 10.96.9.9 }"},
	}, {
		name:  "chain flushed",
		drift: func(tx *knftables.Transaction) { tx.Flush(&knftables.Chain{Name: servicesChain}) },
		want:  []string{"flush chain ip fjord services", "add rule ip fjord services ip daddr . meta l4proto . th dport vmap @service-ips"},
	}, {
		name:  "map deleted",
		drift: func(tx *knftables.Transaction) { tx.Delete(&knftables.Map{Name: serviceNodePortsMap}) },
		want:  []string{"add map ip fjord service-nodeports", "add element ip fjord service-nodeports { tcp . 30021"},
	}, {
		name:  "table deleted",
		drift: func(tx *knftables.Transaction) { tx.Delete(&knftables.Table{}) },
		want:  []string{"add table ip fjord", "add chain ip fjord nat-prerouting { type nat hook prerouting priority -110 ; }"},
	}, {
		name: "rule appended",
		drift: func(tx *knftables.Transaction) {
			tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "accept"})
		},
		want: []string{"flush chain ip fjord masquerading"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, fake := newTestProxier(t, testConfig(clock))
			mustSync(t, p, m, false)
			want := dump(fake)
			tx := fake.NewTransaction()
			tt.drift(tx)
			if err := fake.Run(context.Background(), tx); err != nil {
				t.Fatal(err)
			}
			if st := mustSync(t, p, m, false); st.Operations != 0 {
				t.Errorf("incremental sync noticed drift (%d operations); only full syncs look", st.Operations)
			}
			mustSync(t, p, m, true)
			repair := lastTx(fake)
			for _, w := range tt.want {
				if !strings.Contains(repair, w) {
					t.Errorf("repair lacks %q:\n%s", w, repair)
				}
			}
			if got := dump(fake); got != want {
				t.Errorf("after repair the table differs:\n%s", lineDiff(want, got))
			}
			if tt.name != "table deleted" && strings.Contains(repair, "add table") {
				t.Errorf("repair re-adds the table:\n%s", repair)
			}
		})
	}
}

func TestRestartIsNotDestructive(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	a, b, c := threeServices()
	p, fake := newTestProxier(t, testConfig(clock))
	mustSync(t, p, mapOf(a, b, c), false)
	before := fake.LastTransaction

	// Same map: nothing at all.
	p2, err := New(fake, testConfig(clock))
	if err != nil {
		t.Fatal(err)
	}
	if st := mustSync(t, p2, mapOf(a, b, c), false); st.Operations != 0 || !st.Full || fake.LastTransaction != before {
		t.Errorf("restart with the same map: %+v\n%s", st, lastTx(fake))
	}

	// Changed map (charlie gone, bravo changed): only those are touched,
	// and no chain is deleted in the same transaction.
	p3, _ := New(fake, testConfig(clock))
	b2 := b
	b2.Port = 5353
	st := mustSync(t, p3, mapOf(a, b2), false)
	tx := lastTx(fake)
	for _, bad := range []string{"flush table", "delete table", "delete chain", "alpha", "10.96.0.21"} {
		if strings.Contains(tx, bad) {
			t.Errorf("restart transaction contains %q:\n%s", bad, tx)
		}
	}
	if !strings.Contains(tx, "flush chain ip fjord svc-") || !strings.Contains(tx, "charlie") || st.ChainsFlushed == 0 {
		t.Errorf("restart transaction does not retire charlie's chains:\n%s", tx)
	}
	assertCanonical(t, p3, fake, mapOf(a, b2), clock)
}

func TestStaleChainsAreDeletedAfterTheGracePeriod(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	a, b, c := threeServices()
	mustSync(t, p, mapOf(a, b, c), false)
	st := mustSync(t, p, mapOf(a, b), false)
	if st.ChainsFlushed != 3 || st.ChainsDeleted != 0 || st.PendingDeletes != 3 { // svc-, ext-, ep-
		t.Fatalf("removing charlie: %+v", st)
	}
	clock.Advance(500 * time.Millisecond)
	if st := mustSync(t, p, mapOf(a, b), false); st.Operations != 0 {
		t.Errorf("chains deleted before the grace period: %+v", st)
	}
	clock.Advance(time.Second)
	st = mustSync(t, p, mapOf(a, b), false)
	if st.ChainsDeleted != 3 || st.PendingDeletes != 0 {
		t.Errorf("after the grace period: %+v\n%s", st, lastTx(fake))
	}
	if tx := lastTx(fake); strings.Count(tx, "delete chain") != 3 || strings.Count(tx, "\n") != 3 {
		t.Errorf("cleanup transaction:\n%s", tx)
	}
	if strings.Contains(fake.Dump(), "charlie") {
		t.Errorf("charlie is still in the table:\n%s", fake.Dump())
	}

	// A chain that comes back before its deletion is reused, not deleted.
	st = mustSync(t, p, mapOf(a), false) // bravo goes
	clock.Advance(2 * time.Second)
	st = mustSync(t, p, mapOf(a, b), false) // and comes back
	if st.ChainsDeleted != 0 || !strings.Contains(fake.Dump(), "bravo") {
		t.Errorf("revived chains were deleted: %+v", st)
	}
}

func TestFailedTransactionForcesFullSync(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	a, b, c := threeServices()
	mustSync(t, p, mapOf(a, b, c), false)
	// Make the next element delete fail: remove the element behind the
	// Proxier's back, then ask it to delete it.
	tx := fake.NewTransaction()
	tx.Delete(&knftables.Element{Map: serviceIPsMap, Key: []string{"10.96.0.23", "tcp", "443"}})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sync(mapOf(a, b), false); err == nil {
		t.Fatal("sync deleting a missing element succeeded")
	}
	st := mustSync(t, p, mapOf(a, b), false)
	if !st.Full {
		t.Errorf("sync after a failure was not full: %+v", st)
	}
	assertCanonical(t, p, fake, mapOf(a, b), clock)
}

// assertCanonical lets pending chain deletions run, then checks that the
// table is exactly what a fresh Proxier writes for m on an empty table.
func assertCanonical(t *testing.T, p *Proxier, fake *knftables.Fake, m servicemap.Map, clock *fakeClock) {
	t.Helper()
	clock.Advance(2 * p.s.grace)
	mustSync(t, p, m, false)
	q, fresh := newTestProxier(t, testConfig(clock))
	mustSync(t, q, m, true)
	if got, want := dump(fake), dump(fresh); got != want {
		t.Errorf("table differs from a fresh sync of the same map:\n%s", lineDiff(want, got))
	}
}

// TestAnyStateToAnyState walks a table of maps in random order (seeded)
// and checks after every step that incremental syncs leave exactly what a
// fresh full sync writes.
func TestAnyStateToAnyState(t *testing.T) {
	a, b, c := threeServices()
	a2 := a
	a2.Endpoints = append([]servicemap.Endpoint{endpoint("10.244.1.20:8080@node-a")}, a.Endpoints...)
	a2.Scheduler = "maglev"
	a3 := a
	a3.Endpoints = nil
	b2 := b
	b2.SessionAffinity = servicemap.SessionAffinity{}
	b2.Scheduler = "sh"
	c2 := c
	c2.ExternalTrafficPolicyLocal = true
	c2.UserspacePort = 41000
	c3 := c
	c3.ExternalIPs = []netip.Addr{addr("198.18.0.124")}
	c3.InternalTrafficPolicyLocal = true
	states := []servicemap.Map{
		mapOf(), mapOf(a), mapOf(a, b, c), mapOf(a2, b2), mapOf(a3, c2), mapOf(a2, b, c3), mapOf(b2, c2), mapOf(a3, b2, c3),
	}
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 60 {
		i := rng.IntN(len(states))
		if _, err := p.Sync(states[i], rng.IntN(5) == 0); err != nil {
			t.Fatalf("step %d (state %d): %v", step, i, err)
		}
		clock.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if step%5 == 4 {
			assertCanonical(t, p, fake, states[i], clock)
		}
	}
}

// dump is fake.Dump with set and map elements sorted: nft keeps no element
// order, the fake keeps insertion order.
func dump(fake *knftables.Fake) string {
	var rest, elems []string
	for _, l := range strings.Split(fake.Dump(), "\n") {
		if strings.HasPrefix(l, "add element ") {
			elems = append(elems, l)
		} else {
			rest = append(rest, l)
		}
	}
	slices.Sort(elems)
	return strings.Join(append(rest, elems...), "\n")
}
