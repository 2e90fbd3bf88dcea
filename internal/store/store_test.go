package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

func TestApplyGetListWatchDelete(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	kinds := objects.Kinds()
	podKind, _ := kinds.ByName("Pod")

	_, rev, err := s.List(ctx, podKind, "")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, _ := s.Watch(wctx, podKind, "", rev)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	res, err := s.Apply(ctx, []objects.Object{pod})
	if err != nil || len(res) != 1 || res[0].Action != "created" {
		t.Fatalf("apply: %v %v", res, err)
	}
	got, err := s.Get(ctx, podKind, "default", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetUID() == "" || got.GetResourceVersion() == "" {
		t.Fatalf("uid/resourceVersion not set: %+v", got)
	}
	ev := <-events
	if ev.Type != store.Put || ev.Object.GetName() != "a" {
		t.Fatalf("watch event %+v", ev)
	}

	// Re-applying the same manifest changes nothing.
	pod2 := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	res, err = s.Apply(ctx, []objects.Object{pod2})
	if err != nil || res[0].Action != "unchanged" {
		t.Fatalf("reapply: %v %v", res, err)
	}

	// Status written by an agent survives a re-apply without status.
	if _, err := s.Update(ctx, podKind, "default", "a", func(o objects.Object) (bool, error) {
		o.(*corev1.Pod).Status.PodIP = "10.244.0.5"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	<-events
	pod3 := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default", Labels: map[string]string{"x": "y"}}, Spec: corev1.PodSpec{NodeName: "n1"}}
	if res, err = s.Apply(ctx, []objects.Object{pod3}); err != nil || res[0].Action != "configured" {
		t.Fatalf("apply with labels: %v %v", res, err)
	}
	<-events
	got, _ = s.Get(ctx, podKind, "default", "a")
	if got.(*corev1.Pod).Status.PodIP != "10.244.0.5" || got.GetLabels()["x"] != "y" {
		t.Fatalf("status lost or labels missing: %+v", got)
	}

	if err := s.Delete(ctx, podKind, "default", "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev = <-events:
		if ev.Type != store.Delete || ev.Object.GetName() != "a" {
			t.Fatalf("delete event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delete event")
	}
	if err := s.Delete(ctx, podKind, "default", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	a := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}}
	dup := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}}
	if _, err := s.Apply(ctx, []objects.Object{a, dup}); err == nil {
		t.Fatal("duplicate objects in one apply must be rejected")
	}
	cm, _ := objects.Kinds().ByName("ConfigMap")
	if list, _, _ := s.List(ctx, cm, ""); len(list) != 0 {
		t.Fatalf("partial write: %d objects stored", len(list))
	}
}

func TestEmbeddedSocketPathTooLong(t *testing.T) {
	long := filepath.Join(t.TempDir(), string(make([]byte, 120)))
	if _, err := etcdserver.Start(context.Background(), etcdserver.Config{DataDir: t.TempDir(), ClientSocket: long}); err == nil {
		t.Fatal("expected an error for an over-long socket path")
	}
}

func TestApplyAssignsClusterIPsWithoutCollisions(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	svcKind, _ := objects.Kinds().ByName("Service")
	mk := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	}
	// Concurrent applies of different services must never share an IP or a node port.
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			_, err := s.Apply(ctx, []objects.Object{mk(fmt.Sprintf("s%d", i))})
			errs <- err
		}(i)
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	list, _, _ := s.List(ctx, svcKind, "default")
	ips, ports := map[string]bool{}, map[int32]bool{}
	for _, o := range list {
		svc := o.(*corev1.Service)
		if svc.Spec.ClusterIP == "" || ips[svc.Spec.ClusterIP] || ports[svc.Spec.Ports[0].NodePort] {
			t.Fatalf("%s got clusterIP %q nodePort %d (duplicate or empty)", svc.Name, svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort)
		}
		ips[svc.Spec.ClusterIP], ports[svc.Spec.Ports[0].NodePort] = true, true
	}
	// Re-applying a manifest without clusterIP keeps the assigned one: unchanged.
	res, err := s.Apply(ctx, []objects.Object{mk("s0")})
	if err != nil || res[0].Action != "unchanged" {
		t.Fatalf("re-apply: %v %v", res, err)
	}
}
