package source_test

import (
	"context"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
	"github.com/fjord-net/fjord/internal/testutil/backendtest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

func svc(name string, port int32) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: port, Protocol: corev1.ProtocolTCP}}},
	}
}

func pod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func apply(t *testing.T, st *store.Store, objs ...objects.Object) {
	t.Helper()
	if _, err := st.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond (a bound, not an assertion on time).
var eventually = backendtest.Eventually

// names lists the objects' names, leaving out the API server's own "kubernetes"
// Service.
func names[T metav1.Object](objs []T) []string {
	var out []string
	for _, o := range objs {
		if o.GetName() != "kubernetes" {
			out = append(out, o.GetName())
		}
	}
	sort.Strings(out)
	return out
}

// started starts a process's source and waits for its informers to list.
func started(t *testing.T, src *source.Source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	src.Start(ctx)
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestInformerFollowsChanges(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		env.Apply(svc("a", 80), svc("b", 80))
		src := env.Process(kubetest.Admin).Source
		inf := src.Services()
		changes := make(chan struct{}, 100)
		if err := source.OnChange(inf, func() { changes <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
		started(t, src)
		if got := names(source.List[*corev1.Service](inf)); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Fatalf("listed %v, want [a b]", got)
		}
		env.Apply(svc("a", 8080), svc("c", 80))
		env.Delete(svc("b", 80))
		eventually(t, "a changed, b deleted, c added", func() bool {
			a, ok := source.Get[*corev1.Service](inf, "default", "a")
			_, bOK := source.Get[*corev1.Service](inf, "default", "b")
			_, cOK := source.Get[*corev1.Service](inf, "default", "c")
			return ok && a.Spec.Ports[0].Port == 8080 && !bOK && cOK
		})
		if len(changes) < 5 {
			t.Errorf("handler called %d times, want one per add/update/delete (5)", len(changes))
		}
	})
}

func TestInformerFieldSelector(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		env.Apply(pod("p1", "n1"), pod("p2", "n2"))
		src := env.Process(kubetest.Admin).Source
		mine := src.Pods(source.OnNode("n1"))
		all := src.Pods()
		if mine == all {
			t.Fatal("a narrowed informer must not be the shared unnarrowed one")
		}
		started(t, src)
		env.Apply(pod("p3", "n1"), pod("p4", "n2"))
		eventually(t, "n1's pods", func() bool {
			got := names(source.List[*corev1.Pod](mine))
			return len(got) == 2 && got[0] == "p1" && got[1] == "p3" && len(source.List[*corev1.Pod](all)) == 4
		})
	})
}

// Every kind fjord reads lists and watches on both backends.
func TestEveryKindSyncs(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		src := env.Process(kubetest.Admin).Source
		for _, k := range objects.Kinds().All() {
			src.Informer(k.Name)
		}
		started(t, src)
		env.Apply(svc("a", 80))
		eventually(t, "a seen", func() bool { return len(names(source.List[*corev1.Service](src.Services()))) == 1 })
	})
}

// While the backend is down the informers keep what they hold (consumers keep
// programming from it); once it is back, changes made at once are seen.
func TestInformerRecoversAfterOutage(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		env.Apply(svc("a", 80), svc("b", 80))
		src := env.Process(kubetest.Admin).Source
		inf := src.Services()
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
		env.Stop()
		time.Sleep(time.Second) // let the informers notice: watches end, retries fail
		if got := names(source.List[*corev1.Service](inf)); len(got) != 2 {
			t.Fatalf("during the outage the cache holds %v, want [a b]", got)
		}
		env.Restart()
		env.Apply(svc("a", 81), svc("c", 80))
		env.Delete(svc("b", 80))
		eventually(t, "a changed, b deleted, c added after the restart", func() bool {
			a, ok := source.Get[*corev1.Service](inf, "default", "a")
			_, bOK := source.Get[*corev1.Service](inf, "default", "b")
			_, cOK := source.Get[*corev1.Service](inf, "default", "c")
			return ok && a.Spec.Ports[0].Port == 81 && !bOK && cOK
		})
		mu.Lock()
		defer mu.Unlock()
		if len(deleted) != 1 || deleted[0] != "b" {
			t.Fatalf("deletes seen: %v, want [b] (nothing deleted by the outage itself)", deleted)
		}
	})
}

// serviceLW is the store's Service ListerWatcher and the revision of a first list.
func serviceLW(t *testing.T, st *store.Store) (cache.ListerWatcher, string) {
	t.Helper()
	kind, _ := st.Kinds().ByName("Service")
	lw, err := source.NewStore(st).ListerWatcher(kind, "", fields.Everything())
	if err != nil {
		t.Fatal(err)
	}
	list, err := lw.List(metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return lw, list.(metav1.ListMetaAccessor).GetListMeta().GetResourceVersion()
}

func TestStoreWatchFromCompactedRevisionIsGone(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd")
	}
	st := storetest.New(t)
	apply(t, st, svc("a", 80))
	lw, rv := serviceLW(t, st)
	apply(t, st, svc("a", 81))
	apply(t, st, svc("a", 82))
	resp, err := st.Client().Get(context.Background(), "compaction-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	w, err := lw.Watch(metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed without an error event")
		}
		if ev.Type != watch.Error || !apierrors.IsResourceExpired(apierrors.FromObject(ev.Object)) {
			t.Fatalf("got %v %v, want a 410 Expired error event", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event from a watch at a compacted revision")
	}
}

func TestStoreRejectsUnknownFieldSelector(t *testing.T) {
	kind, _ := objects.Kinds().ByName("Service")
	if _, err := source.NewStore(nil).ListerWatcher(kind, "", fields.OneTermEqualSelector("spec.nodeName", "n1")); err == nil {
		t.Fatal("a Service has no spec.nodeName field to select on")
	}
}

func TestKubernetesBackendServesEveryKind(t *testing.T) {
	client := fake.NewClientset(svc("a", 80), pod("p1", "n1"), pod("p2", "n2"))
	peer := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "fjord.dev/v1", "kind": "BGPPeer",
		"metadata": map[string]any{"name": "tor", "resourceVersion": "1"}, "spec": map[string]any{"peerIP": "198.18.190.254", "asNumber": int64(65000)}}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Group: "fjord.dev", Version: "v1", Resource: "bgppeers"}:          "BGPPeerList",
		{Group: "fjord.dev", Version: "v1", Resource: "bgpconfigurations"}: "BGPConfigurationList",
	}, peer)
	src := source.New(source.NewKubernetes(client).WithDynamic(dyn), 0)
	for _, k := range objects.Kinds().All() {
		src.Informer(k.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src.Start(ctx)
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(source.List[*corev1.Service](src.Services())); len(got) != 1 || got[0] != "a" {
		t.Fatalf("services %v", got)
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc("b", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b seen", func() bool { return len(source.List[*corev1.Service](src.Services())) == 2 })
	// fjord's own kinds arrive typed from the dynamic client, listed and watched.
	peers := func() []*objects.BGPPeer { return source.List[*objects.BGPPeer](src.Informer("BGPPeer")) }
	if got := peers(); len(got) != 1 || got[0].Spec.PeerIP != "198.18.190.254" || got[0].Spec.ASNumber != 65000 {
		t.Fatalf("BGPPeers %+v", got)
	}
	gvr := schema.GroupVersionResource{Group: "fjord.dev", Version: "v1", Resource: "bgppeers"}
	second := peer.DeepCopy()
	second.SetName("tor2")
	if _, err := dyn.Resource(gvr).Create(ctx, second, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "tor2 seen", func() bool { return len(peers()) == 2 })
}

// Objects applied together share one store revision. A reflector resumes its watch
// from the resourceVersion of the last event it got, so a watch that ended halfway
// through one revision's events (its timeout, say) must resume with the rest of that
// revision, not after it.
func TestStoreWatchResumesInsideARevision(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd")
	}
	st := storetest.New(t)
	lw, rv := serviceLW(t, st)
	apply(t, st, svc("a", 80), svc("b", 80), svc("c", 80))
	w, err := lw.Watch(metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	first := (<-w.ResultChan()).Object.(*corev1.Service)
	w.Stop()
	w, err = lw.Watch(metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := map[string]bool{first.Name: true}
	timeout := time.After(10 * time.Second) // a bound, not an assertion on time
	for len(seen) < 3 {
		select {
		case ev := <-w.ResultChan():
			seen[ev.Object.(*corev1.Service).Name] = true
		case <-timeout:
			t.Fatalf("after resuming at %s the watch delivered only %v of a, b, c", first.ResourceVersion, seen)
		}
	}
}
