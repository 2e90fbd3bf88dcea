package source_test

import (
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

// A watch that cannot resume (its resourceVersion was compacted away while the
// client was cut off) ends in 410 Gone; the informer lists again and so sees every
// change of the gap, deletions included.
func TestKubernetesInformerRelistsAfterWatchExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd and kube-apiserver")
	}
	// Without the watch cache, etcd itself serves watches, so compacting it expires
	// every resourceVersion before the compaction.
	c := kubetest.Start(t, kubetest.Options{APIServerArgs: []string{"--watch-cache=false"}})
	c.Apply(svc("a", 80), svc("b", 80))
	client, link := c.Connect(kubetest.Admin)
	src := source.New(source.NewKubernetes(client), 0)
	inf := src.Informer("Service", source.InNamespace("default"))
	var mu sync.Mutex
	var deleted []string
	if err := source.OnObject(inf, func(s *corev1.Service, gone bool) {
		if gone {
			mu.Lock()
			deleted = append(deleted, s.Name)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	started(t, src)
	lists := func() int {
		return link.Count(func(r kubetest.Request) bool { return r.Lists("/api/v1/namespaces/default/services") })
	}
	listed := lists()

	link.Cut()
	c.Apply(svc("a", 81), svc("c", 80))
	c.Delete(svc("b", 80))
	c.CompactEtcd()
	link.Restore()

	eventually(t, "a changed, b deleted, c added during the gap", func() bool {
		a, ok := source.Get[*corev1.Service](inf, "default", "a")
		_, bOK := source.Get[*corev1.Service](inf, "default", "b")
		_, cOK := source.Get[*corev1.Service](inf, "default", "c")
		return ok && a.Spec.Ports[0].Port == 81 && !bOK && cOK
	})
	if lists() == listed {
		t.Fatalf("no list after the gap: the watch resumed from a compacted revision (requests: %v)", link.Requests())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deleted) != 1 || deleted[0] != "b" {
		t.Fatalf("deletes seen: %v, want [b] (from the relist)", deleted)
	}
}
