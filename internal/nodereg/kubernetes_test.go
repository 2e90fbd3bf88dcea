package nodereg_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/kubecp"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/testutil/backendtest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

var pool = nodereg.Pool{CIDR: netip.MustParsePrefix("10.244.0.0/16"), Bits: 24}

// logBuffer collects what registrars log, for tests that expect a warning.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startCluster(t *testing.T, opts kubetest.Options) *kubetest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an embedded etcd and kube-apiserver")
	}
	c := kubetest.Start(t, opts)
	c.GrantFjordRoles()
	return c
}

// registrar is one agent's registrar, with its own client as fjord's agent user.
func registrar(c *kubetest.Cluster, log *slog.Logger) *nodereg.Kubernetes {
	client, _ := c.Connect(kubetest.AgentUser)
	r := nodereg.NewKubernetes(client, log)
	r.Poll = 50 * time.Millisecond
	return r
}

func node(t *testing.T, c *kubetest.Cluster, name string) *corev1.Node {
	t.Helper()
	n, err := c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With the controller-manager allocating (--allocate-node-cidrs), every agent takes
// its Node's spec.podCIDRs and allocates nothing itself.
func TestKubernetesPodCIDRFromControllerManager(t *testing.T) {
	c := startCluster(t, kubetest.Options{ControllerManager: &kubecp.ControllerManager{
		AllocateNodeCIDRs: true, ClusterCIDR: pool.CIDR, NodeCIDRBits: pool.Bits}})
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const n = 3
	got := make([]netip.Prefix, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		name := fmt.Sprintf("n%d", i)
		c.Apply(backendtest.KubeletNode(name, netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)})))
		r := registrar(c, log)
		r.CIDRWait = time.Hour // never allocate: the CIDR must come from the controller-manager
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			got[i], errs[i] = r.PodCIDR(ctx, name, pool)
		}()
	}
	wg.Wait()
	seen := map[netip.Prefix]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("n%d: %v\nlogs:\n%s", i, errs[i], logs.String())
		}
		nd := node(t, c, fmt.Sprintf("n%d", i))
		if len(nd.Spec.PodCIDRs) != 1 || nd.Spec.PodCIDRs[0] != got[i].String() || seen[got[i]] || !pool.CIDR.Contains(got[i].Addr()) {
			t.Fatalf("n%d: PodCIDR returned %v; the Node has %v (seen %v)", i, got[i], nd.Spec.PodCIDRs, seen)
		}
		seen[got[i]] = true
	}
	if strings.Contains(logs.String(), "allocated a pod CIDR") {
		t.Fatalf("an agent allocated a CIDR although the controller-manager does:\n%s", logs.String())
	}
}

// With nothing allocating, agents starting at the same moment on fresh Nodes each
// allocate a CIDR; no CIDR is ever given to two Nodes.
func TestKubernetesSelfAllocatedCIDRsNeverCollide(t *testing.T) {
	c := startCluster(t, kubetest.Options{})
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	const rounds, perRound = 3, 8
	seen := map[netip.Prefix]string{}
	for round := range rounds {
		regs := make([]*nodereg.Kubernetes, perRound)
		for i := range perRound {
			name := fmt.Sprintf("r%d-n%d", round, i)
			c.Apply(backendtest.KubeletNode(name, netip.AddrFrom4([4]byte{198, 18, byte(round), byte(10 + i)})))
			regs[i] = registrar(c, log)
			regs[i].CIDRWait = 0
		}
		got := make([]netip.Prefix, perRound)
		errs := make([]error, perRound)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range perRound {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				<-start
				got[i], errs[i] = regs[i].PodCIDR(ctx, fmt.Sprintf("r%d-n%d", round, i), pool)
			}()
		}
		close(start)
		wg.Wait()
		for i := range perRound {
			name := fmt.Sprintf("r%d-n%d", round, i)
			if errs[i] != nil {
				t.Fatalf("%s: %v", name, errs[i])
			}
			if other, dup := seen[got[i]]; dup {
				t.Fatalf("pod CIDR %v given to %s and %s", got[i], other, name)
			}
			seen[got[i]] = name
			if nd := node(t, c, name); len(nd.Spec.PodCIDRs) != 1 || nd.Spec.PodCIDRs[0] != got[i].String() {
				t.Fatalf("%s: PodCIDR returned %v, the Node has %v", name, got[i], nd.Spec.PodCIDRs)
			}
		}
	}
	// Every Node's CIDR is its own, also as the API holds them.
	list, err := c.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string]string{}
	for _, nd := range list.Items {
		for _, p := range nd.Spec.PodCIDRs {
			if other, dup := holders[p]; dup {
				t.Fatalf("Nodes %s and %s both hold %s", other, nd.Name, p)
			}
			holders[p] = nd.Name
		}
	}
}

// A Node whose podCIDRs lie outside fjord's cluster CIDR (the controller-manager's
// --cluster-cidr differs) keeps them: the agent uses them and warns.
func TestKubernetesPodCIDROutsideThePool(t *testing.T) {
	c := startCluster(t, kubetest.Options{})
	nd := backendtest.KubeletNode("n1", netip.MustParseAddr("198.18.0.11"))
	nd.Spec.PodCIDR, nd.Spec.PodCIDRs = "10.99.3.0/24", []string{"10.99.3.0/24"}
	c.Apply(nd)
	var logs logBuffer
	r := registrar(c, slog.New(slog.NewTextHandler(&logs, nil)))
	r.CIDRWait = time.Hour
	got, err := r.PodCIDR(context.Background(), "n1", pool)
	if err != nil || got != netip.MustParsePrefix("10.99.3.0/24") {
		t.Fatalf("PodCIDR = %v, %v; want the Node's 10.99.3.0/24", got, err)
	}
	if !strings.Contains(logs.String(), "outside fjord's cluster CIDR") {
		t.Fatalf("no warning about the CIDR outside %v:\n%s", pool.CIDR, logs.String())
	}
}

// Register and SetCondition change only what is fjord's, with the agent's
// least-privilege role: the kubelet's labels, annotations and conditions stay.
func TestKubernetesRegisterKeepsTheKubeletsFields(t *testing.T) {
	c := startCluster(t, kubetest.Options{})
	nd := backendtest.KubeletNode("n1", netip.MustParseAddr("198.18.0.11"))
	nd.Annotations = map[string]string{"kubelet.example/keep": "yes", nodereg.AnnotationVTEPMAC: "0e:00:00:00:00:01"}
	c.Apply(nd)
	r := registrar(c, nil)
	ctx := context.Background()
	// Routed mode has no VTEP: the old MAC annotation goes.
	if err := r.Register(ctx, nodereg.Identity{Node: "n1", NodeIP: netip.MustParseAddr("198.18.0.11"), Backend: "routed"}); err != nil {
		t.Fatal(err)
	}
	cond := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "FjordIsUp",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
	if err := r.SetCondition(ctx, "n1", cond); err != nil {
		t.Fatal(err)
	}
	got := node(t, c, "n1")
	want := map[string]string{"kubelet.example/keep": "yes", nodereg.AnnotationBackend: "routed", nodereg.AnnotationNodeIP: "198.18.0.11"}
	for k, v := range want {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q (all: %v)", k, got.Annotations[k], v, got.Annotations)
		}
	}
	if _, ok := got.Annotations[nodereg.AnnotationVTEPMAC]; ok {
		t.Errorf("the VTEP MAC annotation of a routed node is still there: %v", got.Annotations)
	}
	if got.Labels["kubernetes.io/hostname"] != "n1" {
		t.Errorf("labels changed: %v", got.Labels)
	}
	types := map[corev1.NodeConditionType]corev1.ConditionStatus{}
	for _, c := range got.Status.Conditions {
		types[c.Type] = c.Status
	}
	if types[corev1.NodeReady] != corev1.ConditionTrue || types[corev1.NodeNetworkUnavailable] != corev1.ConditionFalse {
		t.Errorf("conditions %v, want the kubelet's Ready and fjord's NetworkUnavailable=False", got.Status.Conditions)
	}
}
