package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

// countingWriter counts the writes one controller makes.
type countingWriter struct {
	inner writer
	n     atomic.Int64
}

func (w *countingWriter) ApplyFenced(ctx context.Context, objs []objects.Object, f store.Fence) ([]store.ApplyResult, error) {
	w.n.Add(1)
	return w.inner.ApplyFenced(ctx, objs, f)
}

func (w *countingWriter) DeleteFenced(ctx context.Context, k objects.Kind, ns, name string, f store.Fence) error {
	w.n.Add(1)
	return w.inner.DeleteFenced(ctx, k, ns, name, f)
}

type running struct {
	c      *Controller
	writes *countingWriter
	stop   func()
}

// start runs a controller until stop (or the test's end); stop waits for Run to return.
func start(t *testing.T, st *store.Store, identity string) *running {
	t.Helper()
	src := source.New(source.NewStore(st), 0) // one per controller, as one per process
	c, err := New(st, src, Config{Identity: identity, SessionTTL: 2 * time.Second, MinInterval: 10 * time.Millisecond},
		slog.New(slog.NewTextHandler(t.Output(), nil)).With("identity", identity))
	if err != nil {
		t.Fatal(err)
	}
	cw := &countingWriter{inner: c.w}
	c.w = cw
	ctx, cancel := context.WithCancel(context.Background())
	src.Start(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var stopped bool
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return &running{c: c, writes: cw, stop: stop}
}

func apply(t *testing.T, st *store.Store, objs ...objects.Object) {
	t.Helper()
	if _, err := st.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, st *store.Store, kind, ns, name string) {
	t.Helper()
	k, _ := st.Kinds().ByName(kind)
	if err := st.Delete(context.Background(), k, ns, name); err != nil {
		t.Fatal(err)
	}
}

func lease(node string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: LeaseNamespace}}
}

// stored renders every slice in namespace default; unmanaged ones are marked.
func stored(t *testing.T, st *store.Store) string {
	t.Helper()
	k, _ := st.Kinds().ByName("EndpointSlice")
	list, _, err := st.List(context.Background(), k, "default")
	if err != nil {
		return "list: " + err.Error()
	}
	var slices []*discoveryv1.EndpointSlice
	var user []string
	for _, o := range list {
		es := o.(*discoveryv1.EndpointSlice)
		if Managed(es) {
			slices = append(slices, es)
		} else {
			user = append(user, "user "+es.Name+"\n")
		}
	}
	sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
	return render(slices) + strings.Join(user, "")
}

// eventually polls cond until it holds, for a bounded time.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: never happened; last state:\n%s", what, last)
}

func waitSlices(t *testing.T, st *store.Store, want string) {
	t.Helper()
	eventually(t, "slices become\n"+want, func() (bool, string) {
		got := stored(t, st)
		return got == want, got
	})
}

func webService() *corev1.Service {
	s := testService("web", map[string]string{"app": "web"}, port("http", 80, intstr.FromInt32(8080)))
	s.UID = ""
	return s
}

func TestControllerFollowsTheStore(t *testing.T) {
	st := storetest.New(t)
	start(t, st, "n1")

	userSlice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-manual", Namespace: "default", Labels: map[string]string{LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	apply(t, st, webService(), userSlice, lease("n1"), lease("n2"),
		testPod("a", "10.244.1.2", "n1", true), testPod("b", "10.244.2.2", "n2", true))
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
  10.244.2.2 b node=n2 ready=true serving=true terminating=false
user web-manual
`)
	svc, err := st.Get(context.Background(), mustKind(st, "Service"), "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.Get(context.Background(), mustKind(st, "EndpointSlice"), "default", "web-fjord")
	if err != nil {
		t.Fatal(err)
	}
	if refs := es.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != svc.GetUID() || svc.GetUID() == "" {
		t.Errorf("owner references %+v, service uid %q", refs, svc.GetUID())
	}

	apply(t, st, testPod("a", "10.244.1.2", "n1", false))
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=false serving=false terminating=false
  10.244.2.2 b node=n2 ready=true serving=true terminating=false
user web-manual
`)

	del(t, st, "Lease", LeaseNamespace, "n2")
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=false serving=false terminating=false
  10.244.2.2 b node=n2 ready=false serving=true terminating=false
user web-manual
`)

	apply(t, st, lease("n2"))
	del(t, st, "Pod", "default", "a")
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.2.2 b node=n2 ready=true serving=true terminating=false
user web-manual
`)

	// Someone edits the managed slice by hand: the controller puts it back.
	es.(*discoveryv1.EndpointSlice).Endpoints = nil
	apply(t, st, es)
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.2.2 b node=n2 ready=true serving=true terminating=false
user web-manual
`)

	del(t, st, "Service", "default", "web")
	waitSlices(t, st, "user web-manual\n")
}

func TestControllerSplitsAndJoinsPortMappings(t *testing.T) {
	st := storetest.New(t)
	start(t, st, "n1")
	svc := webService()
	svc.Spec.Ports[0].TargetPort = intstr.FromString("web")
	apply(t, st, svc, lease("n1"),
		testPod("a", "10.244.1.2", "n1", true, containerPort("web", 8080)),
		testPod("b", "10.244.1.3", "n1", true, containerPort("web", 9090)))
	waitSlices(t, st, `web-fjord-1 IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
web-fjord-2 IPv4 ports=[http/TCP/9090]
  10.244.1.3 b node=n1 ready=true serving=true terminating=false
`)
	apply(t, st, testPod("b", "10.244.1.3", "n1", true, containerPort("web", 8080)))
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
  10.244.1.3 b node=n1 ready=true serving=true terminating=false
`)
}

func TestServiceWithoutSelectorIsLeftAlone(t *testing.T) {
	st := storetest.New(t)
	r := start(t, st, "n1")
	svc := webService()
	svc.Spec.Selector = nil
	user := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	apply(t, st, svc, user, lease("n1"), testPod("a", "10.244.1.2", "n1", true))
	// A selected service written afterwards proves the controller has seen the first.
	other := testService("db", map[string]string{"app": "web"}, port("sql", 5432, intstr.FromInt32(5432)))
	other.UID, other.Spec.ClusterIP = "", "10.96.0.11"
	apply(t, st, other)
	waitSlices(t, st, `db-fjord IPv4 ports=[sql/TCP/5432]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
user web-1
`)
	if !r.c.Leading() {
		t.Error("the only controller is not leading")
	}
}

func TestOneLeaderWritesAndAnotherTakesOver(t *testing.T) {
	st := storetest.New(t)
	r1 := start(t, st, "n1")
	eventually(t, "n1 leads", func() (bool, string) { return r1.c.Leading(), "" })
	r2 := start(t, st, "n2")

	apply(t, st, webService(), lease("n1"), lease("n2"), testPod("a", "10.244.1.2", "n1", true))
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
`)
	if r2.c.Leading() || r2.writes.n.Load() != 0 {
		t.Fatalf("the follower leads (%v) or wrote %d times", r2.c.Leading(), r2.writes.n.Load())
	}
	if r1.writes.n.Load() == 0 {
		t.Fatal("the leader wrote nothing")
	}
	if got := leaderValue(t, st); got != "n1" {
		t.Fatalf("election value %q, want n1", got)
	}

	// A clean stop hands over at once; the new leader keeps slices current.
	r1.stop()
	eventually(t, "n2 takes over", func() (bool, string) { return r2.c.Leading(), "" })
	before := r1.writes.n.Load()
	apply(t, st, testPod("b", "10.244.2.2", "n2", true))
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
  10.244.2.2 b node=n2 ready=true serving=true terminating=false
`)
	if r1.writes.n.Load() != before {
		t.Error("the stopped controller kept writing")
	}
	if r2.writes.n.Load() == 0 {
		t.Error("the new leader wrote nothing")
	}
}

func TestLeaderThatLosesItsSessionStopsAndCampaignsAgain(t *testing.T) {
	st := storetest.New(t)
	r1 := start(t, st, "n1")
	eventually(t, "n1 leads", func() (bool, string) { return r1.c.Leading(), "" })
	r2 := start(t, st, "n2")
	eventually(t, "n2 campaigns", func() (bool, string) {
		n := len(electionKeys(t, st))
		return n == 2, fmt.Sprint(n, " candidates")
	})

	// Expire n1's session as a network partition would.
	kvs := electionKeys(t, st)
	if string(kvs[0].Value) != "n1" {
		t.Fatalf("first candidate is %q", kvs[0].Value)
	}
	if _, err := st.Client().Revoke(context.Background(), clientv3.LeaseID(kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 takes over and n1 steps down", func() (bool, string) {
		return r2.c.Leading() && !r1.c.Leading(), fmt.Sprintf("n1 leading=%v n2 leading=%v", r1.c.Leading(), r2.c.Leading())
	})
	eventually(t, "n1 campaigns again", func() (bool, string) {
		kvs := electionKeys(t, st)
		return len(kvs) == 2 && string(kvs[1].Value) == "n1", fmt.Sprint(len(kvs), " candidates")
	})
	before := r1.writes.n.Load()
	apply(t, st, webService(), lease("n1"), testPod("a", "10.244.1.2", "n1", true))
	waitSlices(t, st, `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
`)
	if r1.writes.n.Load() != before {
		t.Error("the deposed leader wrote")
	}
}

// electionKeys lists the candidates, oldest (the leader) first.
func electionKeys(t *testing.T, st *store.Store) []*mvccKV {
	t.Helper()
	resp, err := st.Client().Get(context.Background(), ElectionKey(st)+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*mvccKV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, &mvccKV{Value: kv.Value, Lease: kv.Lease})
	}
	return out
}

type mvccKV struct {
	Value []byte
	Lease int64
}

func leaderValue(t *testing.T, st *store.Store) string {
	kvs := electionKeys(t, st)
	if len(kvs) == 0 {
		return ""
	}
	return string(kvs[0].Value)
}

func mustKind(st *store.Store, name string) objects.Kind {
	k, ok := st.Kinds().ByName(name)
	if !ok {
		panic(name)
	}
	return k
}
