package store_test

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/client/v3/concurrency"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

// A leader paused while another took over must not overwrite the new leader's
// objects: its fenced writes fail as a whole, with ErrFenced, and write nothing.
func TestFencedWritesStopWhenTheElectionMovesOn(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd")
	}
	st := storetest.New(t)
	ctx := context.Background()
	cm := func(v string) objects.Object {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"v": v}}
	}
	campaign := func(id string) (*concurrency.Session, store.Fence) {
		s, err := concurrency.NewSession(st.Client(), concurrency.WithTTL(5))
		if err != nil {
			t.Fatal(err)
		}
		el := concurrency.NewElection(s, "/test/election")
		if err := el.Campaign(ctx, id); err != nil {
			t.Fatal(err)
		}
		return s, store.Fence{Key: el.Key(), Rev: el.Rev()}
	}
	old, oldFence := campaign("old")
	if _, err := st.ApplyFenced(ctx, []objects.Object{cm("old-1")}, oldFence); err != nil {
		t.Fatalf("the leader's write failed: %v", err)
	}
	// The old leader's session expires (a pause, a partition); a new one wins.
	if _, err := st.Client().Revoke(ctx, old.Lease()); err != nil {
		t.Fatal(err)
	}
	_, newFence := campaign("new")
	if _, err := st.ApplyFenced(ctx, []objects.Object{cm("new-1")}, newFence); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyFenced(ctx, []objects.Object{cm("old-2")}, oldFence); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a deposed leader's apply returned %v, want ErrFenced", err)
	}
	k, _ := st.Kinds().ByName("ConfigMap")
	if err := st.DeleteFenced(ctx, k, "default", "c", oldFence); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a deposed leader's delete returned %v, want ErrFenced", err)
	}
	o, err := st.Get(ctx, k, "default", "c")
	if err != nil || o.(*corev1.ConfigMap).Data["v"] != "new-1" {
		t.Fatalf("the new leader's object was overwritten: %v %v", o, err)
	}
	if err := st.DeleteFenced(ctx, k, "default", "c", newFence); err != nil {
		t.Fatal(err)
	}
}
