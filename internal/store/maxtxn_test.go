package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

func configMaps(n int) []objects.Object {
	out := make([]objects.Object, n)
	for i := range out {
		out[i] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%03d", i), Namespace: "default"}}
	}
	return out
}

func storedConfigMaps(t *testing.T, s *store.Store) int {
	t.Helper()
	cm, _ := objects.Kinds().ByName("ConfigMap")
	list, _, err := s.List(context.Background(), cm, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// TestApplyOverServerMaxTxnOps: against an etcd started with --max-txn-ops
// 8, applying 8 objects works and 9 fail with an error naming the limit and
// how to raise it, having written nothing.
func TestApplyOverServerMaxTxnOps(t *testing.T) {
	s := storetest.StartWith(t, storetest.Options{MaxTxnOps: 8}).Store
	ctx := context.Background()
	if _, err := s.Apply(ctx, configMaps(8)); err != nil {
		t.Fatalf("8 objects under --max-txn-ops 8: %v", err)
	}
	more := append(configMaps(8), configMaps(9)[8]) // the 8 again (unchanged, no operation) and a 9th
	if _, err := s.Apply(ctx, more); err != nil {
		t.Fatalf("one new object next to 8 unchanged ones: %v", err)
	}
	changed := configMaps(12) // 12 writes: 9 changed, 3 new
	for _, o := range changed {
		o.(*corev1.ConfigMap).Data = map[string]string{"v": "2"}
	}
	_, err := s.Apply(ctx, changed)
	var tooMany *store.TooManyOpsError
	if !errors.As(err, &tooMany) || !errors.Is(err, store.ErrTooManyOps) || tooMany.Objects != 12 {
		t.Fatalf("12 writes under --max-txn-ops 8: %v, want a TooManyOpsError for 12 objects", err)
	}
	for _, want := range []string{"--max-txn-ops", "nothing was written", "128", "smaller files"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n := storedConfigMaps(t, s); n != 9 {
		t.Errorf("%d ConfigMaps stored, want the 9 from before", n)
	}
	cm, _ := objects.Kinds().ByName("ConfigMap")
	got, err := s.Get(ctx, cm, "default", "cm-000")
	if err != nil || len(got.(*corev1.ConfigMap).Data) != 0 {
		t.Errorf("cm-000 was changed by the refused apply: %v, %v", got, err)
	}
}

// TestApplyOverClientMaxTxnOps: with SetMaxTxnOps the store refuses before
// sending anything, naming the limit it was given.
func TestApplyOverClientMaxTxnOps(t *testing.T) {
	s := storetest.New(t) // the embedded default allows 10000
	s.SetMaxTxnOps(5)
	_, err := s.Apply(context.Background(), configMaps(6))
	var tooMany *store.TooManyOpsError
	if !errors.As(err, &tooMany) || tooMany.Limit != 5 || !strings.Contains(err.Error(), "--max-txn-ops 5") {
		t.Fatalf("6 objects with SetMaxTxnOps(5): %v", err)
	}
	if n := storedConfigMaps(t, s); n != 0 {
		t.Errorf("%d ConfigMaps stored, want none", n)
	}
	if _, err := s.Apply(context.Background(), configMaps(5)); err != nil {
		t.Errorf("5 objects with SetMaxTxnOps(5): %v", err)
	}
}
