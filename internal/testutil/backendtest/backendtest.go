// Package backendtest runs one behavioural test on each place fjord's objects come
// from: its own etcd store (internal/testutil/storetest's throwaway member) and a real
// Kubernetes API server (internal/testutil/kubetest). A test written against Env
// reads through a source.Source and writes through Apply and Delete, so it asserts the
// same behaviour on both; where the backends differ by design (who creates the Node,
// who owns pod CIDRs), Env says how.
package backendtest

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

// Backend names, as source.Source.Backend reports them.
const (
	Etcd       = "etcd"
	Kubernetes = "kubernetes"
)

// Env is one running backend.
type Env struct {
	Name string // Etcd or Kubernetes

	// Store is set on the etcd backend, Cluster on the Kubernetes one.
	Store   *store.Store
	Cluster *kubetest.Cluster

	t    testing.TB
	etcd *storetest.Env
}

// Run runs f as a subtest on each backend; both need an embedded etcd, so it skips
// under -short.
func Run(t *testing.T, f func(t *testing.T, env *Env)) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an embedded etcd and kube-apiserver")
	}
	for _, name := range []string{Etcd, Kubernetes} {
		t.Run(name, func(t *testing.T) { f(t, Start(t, name, kubetest.Options{})) })
	}
}

// Start starts one backend (opts only matter to Kubernetes).
func Start(t testing.TB, name string, opts kubetest.Options) *Env {
	t.Helper()
	e := &Env{Name: name, t: t}
	switch name {
	case Etcd:
		e.etcd = storetest.Start(t)
		e.Store = e.etcd.Store
	case Kubernetes:
		e.Cluster = kubetest.Start(t, opts)
		e.Cluster.GrantFjordRoles()
		e.Cluster.InstallFjordCRDs()
	default:
		t.Fatalf("backendtest: no backend %q", name)
	}
	return e
}

// Proc is what one fjord process holds: its Source and, on Kubernetes, its own client
// and the Link under it.
type Proc struct {
	Source *source.Source
	Client kubernetes.Interface // nil on etcd
	Link   *kubetest.Link       // nil on etcd
}

// Process returns a new process's connection as user (kubetest.Admin, AgentUser or
// IngressUser; the etcd store has no users).
func (e *Env) Process(user string) Proc {
	e.t.Helper()
	if e.Store != nil {
		return Proc{Source: source.New(source.NewStore(e.Store), 0)}
	}
	c, l := e.Cluster.Connect(user)
	// fjord's own kinds (the BGP CRDs) through a dynamic client; its traffic does not
	// go through the Link.
	dyn, err := kubeclient.NewDynamic(e.Cluster.RESTConfig(user), "backendtest")
	if err != nil {
		e.t.Fatal(err)
	}
	return Proc{Source: source.New(source.NewKubernetes(c).WithDynamic(dyn), 0), Client: c, Link: l}
}

// Apply creates or updates objects, as `fjord apply` or `kubectl apply` would.
func (e *Env) Apply(objs ...objects.Object) {
	e.t.Helper()
	if e.Store == nil {
		for _, o := range objs {
			e.Cluster.Apply(o)
		}
		return
	}
	if _, err := e.Store.Apply(context.Background(), objs); err != nil {
		e.t.Fatal(err)
	}
}

// Delete deletes objects.
func (e *Env) Delete(objs ...objects.Object) {
	e.t.Helper()
	for _, o := range objs {
		if e.Store == nil {
			e.Cluster.Delete(o)
			continue
		}
		k, err := e.Store.KindOf(o)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.Store.Delete(context.Background(), k, o.GetNamespace(), o.GetName()); err != nil {
			e.t.Fatal(err)
		}
	}
}

// Stop takes the backend away (etcd's member, or kube-apiserver): an outage.
func (e *Env) Stop() {
	e.t.Helper()
	if e.Store != nil {
		e.etcd.Server.Close()
		return
	}
	e.Cluster.StopAPIServer()
}

// Restart brings it back after Stop, with the same data.
func (e *Env) Restart() {
	e.t.Helper()
	if e.Store != nil {
		e.etcd.StartServer()
		return
	}
	e.Cluster.StartAPIServer()
}

// Registrar returns a node registrar for one agent process: on etcd the agent
// creates its Node and claims a CIDR; on Kubernetes it runs as fjord's agent user
// and allocates a pod CIDR itself at once (no controller-manager runs).
func (e *Env) Registrar(p Proc, log *slog.Logger) nodereg.Registrar {
	if e.Store != nil {
		return nodereg.NewEtcd(e.Store, 5*time.Second, log)
	}
	r := nodereg.NewKubernetes(p.Client, log)
	r.CIDRWait, r.Poll = 0, 50*time.Millisecond
	return r
}

// AddNode does what the kubelet does before an agent starts on a node: on
// Kubernetes it registers the Node with its address, Ready, unless the Node exists;
// on etcd the agent registers itself, so nothing happens.
func (e *Env) AddNode(name string, ip netip.Addr) {
	e.t.Helper()
	if e.Store != nil {
		return
	}
	_, err := e.Cluster.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		e.Cluster.Apply(KubeletNode(name, ip))
	case err != nil:
		e.t.Fatal(err)
	}
}

// KubeletNode is a Node as a kubelet registers it: hostname label, InternalIP, Ready.
func KubeletNode(name string, ip netip.Addr) *corev1.Node {
	return &corev1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip.String()}, {Type: corev1.NodeHostName, Address: name}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		},
	}
}

// Eventually polls cond every 20 ms until it holds, failing the test after a bound
// generous enough for a loaded machine (the bound is not what is tested).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never happened (60 s): %s", what)
}
