package nodereg_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fjord-net/fjord/internal/lab"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

// TestLeaseRidesOutAHiccup: with the lab's Lease TTL, a node whose link to the store
// stalls for 1.5 s (a 1 s hiccup and the TCP retransmission after it) keeps its Lease,
// so its endpoints do not flap; one cut off for longer than the TTL loses it, and gets
// it back by itself once the link returns.
func TestLeaseRidesOutAHiccup(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd")
	}
	env := storetest.Start(t)
	st, link := env.Stalled(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := nodereg.NewEtcd(st, lab.LeaseTTL, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { defer close(done); _ = reg.KeepAlive(ctx, "n1") }()
	defer func() { cancel(); <-done }()

	leaseKind, _ := env.Store.Kinds().ByName("Lease")
	key := env.Store.Key(leaseKind, nodereg.LeaseNamespace, "n1")
	events := env.Store.Client().Watch(ctx, key)
	next := func(limit time.Duration) (*clientv3.Event, bool) {
		select {
		case wr := <-events:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			return wr.Events[0], true
		case <-time.After(limit):
			return nil, false
		}
	}
	// Wait for the Lease (its first put), then for a few renewals.
	deadline := time.Now().Add(20 * time.Second)
	for renewals := 0; renewals < 3; {
		ev, ok := next(time.Until(deadline))
		if !ok {
			t.Fatalf("the Lease was not put and renewed within 20 s (%d renewals)", renewals)
		}
		if ev.Type == clientv3.EventTypeDelete {
			t.Fatal("the Lease was deleted before any stall")
		}
		renewals++
	}

	// The worst moment: the stall begins just before the next renewal is due, so that
	// renewal is held for all of it.
	time.Sleep(nodereg.RenewInterval(lab.LeaseTTL) - 100*time.Millisecond)
	link.Stall(1500 * time.Millisecond)
	// Watch for two TTLs after the stall: every event must be a renewal.
	for end := time.Now().Add(2 * lab.LeaseTTL); time.Now().Before(end); {
		if ev, ok := next(time.Until(end)); ok && ev.Type == clientv3.EventTypeDelete {
			t.Fatal("the Lease expired during a 1.5 s stall")
		}
	}

	// Cut off for twice the TTL: the Lease runs out meanwhile.
	go link.Stall(2 * lab.LeaseTTL)
	expired := false
	for end := time.Now().Add(2 * lab.LeaseTTL); time.Now().Before(end) && !expired; {
		if ev, ok := next(time.Until(end)); ok && ev.Type == clientv3.EventTypeDelete {
			expired = true
		}
	}
	if !expired {
		t.Fatalf("the Lease outlived a %v silence (TTL %v)", 2*lab.LeaseTTL, lab.LeaseTTL)
	}
	// Back: the registrar puts the Lease again on its own.
	if ev, ok := next(30 * time.Second); !ok || ev.Type != clientv3.EventTypePut {
		t.Fatalf("the Lease did not come back within 30 s of the link (%v)", ev)
	}
}
