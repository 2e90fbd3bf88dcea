package status_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/fjord-net/fjord/internal/ingress/status"
	"github.com/fjord-net/fjord/internal/leader"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/testutil/backendtest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

func TestLoadBalancer(t *testing.T) {
	got := status.LoadBalancer([]string{"198.18.0.12", "lb.example", "198.18.0.11", "198.18.0.12", "", "::ffff:198.18.0.13"})
	want := []networkingv1.IngressLoadBalancerIngress{{IP: "198.18.0.11"}, {IP: "198.18.0.12"}, {IP: "198.18.0.13"}, {Hostname: "lb.example"}}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func ingress(name, class string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
}

type writer struct {
	id    string
	inner status.Writer
	wrote chan string
}

func (w writer) UpdateIngressStatus(ctx context.Context, ing *networkingv1.Ingress) error {
	w.wrote <- w.id + ":" + ing.Name
	return w.inner.UpdateIngressStatus(ctx, ing)
}

const leaseNS, leaseName = "fjord-system", "fjord-ingress-leader"

var timing = leader.Timing{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}

// ingressProc is one ingress process's status writer.
type ingressProc struct {
	wrote chan string
	stop  func()
	link  *kubetest.Link // nil on etcd
	log   *syncBuffer
}

// syncBuffer keeps a process's log, for what the test can only see there (when it
// stops leading).
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs one ingress process's status writer, as `fjord ingress` does: on
// Kubernetes with its own client as fjord's ingress user.
func start(t *testing.T, env *backendtest.Env, id, addr string) *ingressProc {
	return startWith(t, env, id, func(backendtest.Proc) status.Config {
		return status.Config{Addresses: status.Static([]string{addr})}
	})
}

// startWith is start with the addresses (and what changes them) from cfg.
func startWith(t *testing.T, env *backendtest.Env, id string, cfg func(backendtest.Proc) status.Config) *ingressProc {
	proc := env.Process(kubetest.IngressUser)
	var lock resourcelock.Interface
	var inner status.Writer
	if env.Store != nil {
		lock, inner = leader.StoreLock(env.Store, leaseNS, leaseName, id), status.StoreWriter{Store: env.Store}
	} else {
		lock, inner = leader.KubeLock(proc.Client, leaseNS, leaseName, id), status.KubeWriter{Client: proc.Client}
	}
	wrote := make(chan string, 100)
	logs := &syncBuffer{}
	c := cfg(proc)
	c.Lock, c.Writer, c.Timing = lock, writer{id: id, inner: inner, wrote: wrote}, timing
	s, err := status.New(c, proc.Source.Ingresses(), func(ing *networkingv1.Ingress) bool { return *ing.Spec.IngressClassName == "nginx" },
		slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), nil)).With("id", id))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	proc.Source.Start(ctx)
	go func() { s.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return &ingressProc{wrote: wrote, stop: stop, link: proc.Link, log: logs}
}

// lbOf returns the status address of an Ingress, "" unless it has exactly one.
func lbOf(t *testing.T, env *backendtest.Env, name string) string {
	lb := lbAll(t, env, name)
	if len(lb) != 1 {
		return ""
	}
	return lb[0]
}

// lbAll returns every status address of an Ingress.
func lbAll(t *testing.T, env *backendtest.Env, name string) []string {
	var ing *networkingv1.Ingress
	if env.Store != nil {
		k, _ := env.Store.Kinds().ByName("Ingress")
		o, err := env.Store.Get(context.Background(), k, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		ing = o.(*networkingv1.Ingress)
	} else {
		var err error
		if ing, err = env.Cluster.Client.NetworkingV1().Ingresses("default").Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, lb := range ing.Status.LoadBalancer.Ingress {
		out = append(out, lb.IP)
	}
	return out
}

var eventually = backendtest.Eventually

// One of two ingress processes writes the status of the Ingresses it serves, once;
// the other writes nothing; when the leader stops, the other takes over.
func TestStatusWrittenOnceByTheLeaderAndHandedOver(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		env.Apply(ingress("ours", "nginx"), ingress("theirs", "other"))
		a := start(t, env, "a", "198.18.0.11")
		eventually(t, "a leads and writes", func() bool { return lbOf(t, env, "ours") == "198.18.0.11" })
		b := start(t, env, "b", "198.18.0.12")
		time.Sleep(500 * time.Millisecond) // b would have written by now if it led
		if len(b.wrote) != 0 || len(a.wrote) != 1 {
			t.Fatalf("writes: a %d, b %d; want exactly one, by the leader", len(a.wrote), len(b.wrote))
		}
		if lbOf(t, env, "theirs") != "" {
			t.Fatal("status written on an Ingress of another class")
		}
		a.stop() // releases the Lease
		eventually(t, "b takes over and writes its address", func() bool { return lbOf(t, env, "ours") == "198.18.0.12" })
		if got := <-b.wrote; got != "b:ours" {
			t.Fatalf("b wrote %s", got)
		}
	})
}

// A process that leads again after another led in between writes its addresses
// again: the status must not keep the other's.
func TestStatusRewrittenWhenLeadershipReturns(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		env.Apply(ingress("ours", "nginx"))
		a := start(t, env, "a", "198.18.0.11")
		eventually(t, "a leads and writes", func() bool { return lbOf(t, env, "ours") == "198.18.0.11" })
		b := start(t, env, "b", "198.18.0.12")
		// a loses the Lease (as a leader that stalls past its renew deadline does) to
		// a holder that is not running; once a has stopped leading, b gets it.
		setHolder := func(id string, seconds int32) {
			now := metav1.NewMicroTime(time.Now())
			env.Apply(&coordinationv1.Lease{
				TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
				ObjectMeta: metav1.ObjectMeta{Namespace: leaseNS, Name: leaseName},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &seconds,
					AcquireTime: &now, RenewTime: &now, LeaseTransitions: ref[int32](5)},
			})
		}
		setHolder("gone", 600)
		eventually(t, "a stops leading", func() bool { return strings.Contains(a.log.String(), "stopped leading") })
		setHolder("b", 2)
		eventually(t, "b leads and writes", func() bool { return lbOf(t, env, "ours") == "198.18.0.12" })
		b.stop() // releases the Lease; a is the only candidate
		eventually(t, "a leads again and writes its address again", func() bool { return lbOf(t, env, "ours") == "198.18.0.11" })
		if len(a.wrote) != 2 || len(b.wrote) != 1 {
			t.Fatalf("writes: a %d, b %d; want a once per term (2), b once", len(a.wrote), len(b.wrote))
		}
	})
}

// A leader cut off from the API server (dead, as far as the cluster can tell) loses
// the Lease to the other once it expires; back on the network it stays a follower
// and writes nothing.
func TestKubernetesStatusHandedOverWhenTheLeaderIsCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd and kube-apiserver")
	}
	env := backendtest.Start(t, backendtest.Kubernetes, kubetest.Options{})
	env.Apply(ingress("ours", "nginx"))
	a := start(t, env, "a", "198.18.0.11")
	eventually(t, "a leads and writes", func() bool { return lbOf(t, env, "ours") == "198.18.0.11" })
	b := start(t, env, "b", "198.18.0.12")
	a.link.Cut()
	eventually(t, "b takes over once a's Lease expires", func() bool { return lbOf(t, env, "ours") == "198.18.0.12" })
	a.link.Restore()
	// a asks for the Lease again a few times and finds b holding it.
	asked := a.link.Count(isLeaseGet)
	eventually(t, "a looks at the Lease again", func() bool { return a.link.Count(isLeaseGet) >= asked+5 })
	if lbOf(t, env, "ours") != "198.18.0.12" || len(a.wrote) != 1 || len(b.wrote) != 1 {
		t.Fatalf("status %s; writes: a %d, b %d; want b's address, each written once", lbOf(t, env, "ours"), len(a.wrote), len(b.wrote))
	}
}

func isLeaseGet(r kubetest.Request) bool {
	return r.Method == "GET" && r.Path == "/apis/coordination.k8s.io/v1/namespaces/"+leaseNS+"/leases/"+leaseName
}

func ref[T any](v T) *T { return &v }

// ingressPod is a pod of the ingress DaemonSet, running on the node at hostIP. Like
// every pod of a DaemonSet it carries its own node's zone and region: the API server
// (PodTopologyLabels, on by default since Kubernetes 1.35) copies them from the Node.
func ingressPod(name, hostIP string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: leaseNS,
			Labels: map[string]string{"app.kubernetes.io/name": "fjord-ingress", "controller-revision-hash": name,
				"topology.kubernetes.io/zone": "zone-" + name, "topology.kubernetes.io/region": "region-" + name}},
		Spec:   corev1.PodSpec{NodeName: "node-" + name, Containers: []corev1.Container{{Name: "ingress", Image: "fjord.dev/fjord:dev"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, HostIP: hostIP},
	}
}

// With the host IPs of its workload's pods as addresses (deploy/fjord.yaml's ingress
// DaemonSet), the status follows the pods as they start and stop, at once: the
// periodic refresh is an hour away. On Kubernetes the ingress's role must let it
// watch those pods (without, the informer falls back to listing again after every
// failed watch, and follows them late).
func TestStatusFollowsTheIngressPods(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		if p := env.Process(kubetest.IngressUser); p.Client != nil {
			for _, verb := range []string{"list", "watch"} {
				r, err := p.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: leaseNS, Verb: verb, Resource: "pods"}}}, metav1.CreateOptions{})
				if err != nil || !r.Status.Allowed {
					t.Fatalf("deploy/fjord.yaml does not let the ingress %s pods in %s: %v %+v", verb, leaseNS, err, r)
				}
			}
		}
		other := ingressPod("other", "198.18.0.99")
		other.Labels = map[string]string{"app.kubernetes.io/name": "fjord-agent"}
		env.Apply(ingress("ours", "nginx"), ingressPod("ingress-a", "198.18.0.11"), other)
		startWith(t, env, "a", func(p backendtest.Proc) status.Config {
			pods := p.Source.Pods(source.InNamespace(leaseNS))
			return status.Config{Addresses: status.PodHostIPs(pods, leaseNS, "ingress-a"), Changes: pods, Refresh: time.Hour}
		})
		want := func(ips ...string) func() bool {
			return func() bool { return slices.Equal(lbAll(t, env, "ours"), ips) }
		}
		eventually(t, "the leader writes its own pod's node", want("198.18.0.11"))
		pending := ingressPod("ingress-b", "")
		pending.Status.Phase = corev1.PodPending
		env.Apply(pending)
		env.Apply(ingressPod("ingress-b", "198.18.0.12"))
		eventually(t, "a sibling that runs is added", want("198.18.0.11", "198.18.0.12"))
		env.Delete(ingressPod("ingress-b", ""))
		eventually(t, "a sibling that is gone is removed", want("198.18.0.11"))
	})
}
