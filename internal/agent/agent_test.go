package agent_test

import (
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

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/kernel/fakekernel"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/testutil/backendtest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

// Test addresses: underlay 198.18.0.0/24, pods 10.244.0.0/16. Nothing touches a real
// kernel: every agent gets a fake.

type node struct {
	name   string
	k      *fakekernel.Kernel
	cancel context.CancelFunc
	done   chan error
	pub    chan nodestate.NodeNetwork
	ready  chan struct{} // closed after the first successful reconcile
}

func underlayAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }

// startAgent runs node name's agent as its own process would: its own source (and
// client), its registrar, a fake kernel (k, or a new one). On Kubernetes the test
// first plays the kubelet and registers the Node.
func startAgent(t *testing.T, env *backendtest.Env, name string, i int, k *fakekernel.Kernel) *node {
	t.Helper()
	return startAgentWith(t, env, name, i, k, slog.New(slog.NewTextHandler(t.Output(), nil)))
}

func startAgentWith(t *testing.T, env *backendtest.Env, name string, i int, k *fakekernel.Kernel, log *slog.Logger) *node {
	t.Helper()
	if k == nil {
		k = &fakekernel.Kernel{Underlay: kernel.Underlay{Name: "eth0", Addr: underlayAddr(i), MTU: 1500,
			OnLink: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}}
	}
	env.AddNode(name, k.Underlay.Addr)
	log = log.With("node", name)
	n := &node{name: name, k: k, done: make(chan error, 1), pub: make(chan nodestate.NodeNetwork, 1), ready: make(chan struct{})}
	proc := env.Process(kubetest.AgentUser) // one per agent, as one per process
	a, err := agent.New(agent.Config{
		NodeName: name, Mode: podnet.ModeVXLAN, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), NodeCIDRBits: 24,
		VNI: 1, Port: 8472, RunDir: t.TempDir(), Resync: time.Hour,
	}, agent.Deps{Registrar: env.Registrar(proc, log), Nodes: proc.Source.Nodes(), Kernel: k, Log: log,
		Publish: func(nn nodestate.NodeNetwork) error { n.pub <- nn; return nil },
		Ready:   func() { close(n.ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	proc.Source.Start(ctx)
	n.cancel = cancel
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

// eventually polls cond until it holds; the deadline only bounds a broken test.
var eventually = backendtest.Eventually

func routesTo(k *fakekernel.Kernel) string { return k.State().String() }

func nodeObj(name string) *corev1.Node {
	return &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func TestThreeAgentsBuildAMesh(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		var nodes []*node
		for i := 1; i <= 3; i++ {
			nodes = append(nodes, startAgent(t, env, fmt.Sprintf("n%d", i), i, nil))
		}
		cidrs := map[netip.Prefix]string{}
		for _, n := range nodes {
			nn := <-n.pub
			if other, dup := cidrs[nn.PodCIDR]; dup {
				t.Fatalf("%s and %s both hold %v", n.name, other, nn.PodCIDR)
			}
			cidrs[nn.PodCIDR] = n.name
			if nn.MTU != 1450 || nn.Gateway != nn.PodCIDR.Addr().Next() {
				t.Fatalf("%s published %+v", n.name, nn)
			}
			if !n.k.Forwarding {
				t.Fatalf("%s did not enable forwarding", n.name)
			}
		}
		for _, n := range nodes {
			eventually(t, n.name+" has routes to both peers", func() bool { return strings.Count(routesTo(n.k), "onlink") == 2 })
		}

		// Deleting n3 stops its agent and removes its routes from every other node.
		env.Delete(nodeObj("n3"))
		select {
		case err := <-nodes[2].done:
			if err == nil || !strings.Contains(err.Error(), "deleted") {
				t.Fatalf("n3's agent ended with %v", err)
			}
			nodes[2].done <- err
		case <-time.After(60 * time.Second):
			t.Fatal("n3's agent kept running after its Node was deleted")
		}
		for _, n := range nodes[:2] {
			eventually(t, n.name+" forgets n3", func() bool {
				st := routesTo(n.k)
				return strings.Count(st, "onlink") == 1 && !strings.Contains(st, agent.VTEPMAC("n3"))
			})
		}
	})
}

func TestRestartChangesNothing(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		a := startAgent(t, env, "n1", 1, nil)
		b := startAgent(t, env, "n2", 2, nil)
		<-a.pub
		first := <-b.pub
		eventually(t, "n2 programmed", func() bool { return strings.Contains(routesTo(b.k), "onlink") })
		before, applies := routesTo(b.k), b.k.Applies
		b.cancel()
		<-b.done
		b.done <- nil
		b2 := startAgent(t, env, "n2", 2, b.k)
		if again := <-b2.pub; again.PodCIDR != first.PodCIDR {
			t.Fatalf("restart moved the pod CIDR from %v to %v", first.PodCIDR, again.PodCIDR)
		}
		<-b2.ready // the restarted agent has observed the kernel and reconciled once
		if after := routesTo(b.k); after != before || b.k.Applies != applies {
			t.Fatalf("restart changed the kernel (%d applies):\nbefore\n%s\nafter\n%s", b.k.Applies-applies, before, after)
		}
	})
}

// An outage of the store or API server leaves the data plane as it was; once it is
// back, a new node reaches every agent's kernel.
func TestOutageKeepsDataPlane(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		a := startAgent(t, env, "n1", 1, nil)
		b := startAgent(t, env, "n2", 2, nil)
		<-a.pub
		<-b.pub
		eventually(t, "n1 programmed", func() bool { return strings.Contains(routesTo(a.k), "onlink") })
		before := routesTo(a.k)
		env.Stop()
		time.Sleep(time.Second) // long enough for the agents to notice
		if after := routesTo(a.k); after != before {
			t.Fatalf("outage changed the data plane:\n%s", after)
		}
		env.Restart()
		c := startAgent(t, env, "n3", 3, nil)
		<-c.pub
		for _, n := range []*node{a, b} {
			eventually(t, n.name+" has a route to n3 after the outage", func() bool {
				return strings.Count(routesTo(n.k), "onlink") == 2 && strings.Contains(routesTo(n.k), agent.VTEPMAC("n3"))
			})
		}
	})
}

// Agents starting at once on fresh nodes never get the same pod CIDR: on etcd each
// claims with a compare-and-swap; on Kubernetes, with no controller-manager
// allocating, each allocates one itself.
func TestConcurrentClaimsNeverCollide(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		const n = 8
		var wg sync.WaitGroup
		pubs := make([]*node, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); pubs[i] = startAgent(t, env, fmt.Sprintf("c%d", i), i, nil) }(i)
		}
		wg.Wait()
		seen := map[netip.Prefix]string{}
		for _, p := range pubs {
			nn := <-p.pub
			if other, dup := seen[nn.PodCIDR]; dup {
				t.Fatalf("pod CIDR %v handed out twice: %s and %s", nn.PodCIDR, other, p.name)
			}
			seen[nn.PodCIDR] = p.name
		}
		for _, nd := range listNodes(t, env) {
			if got := seen[netip.MustParsePrefix(nd.Spec.PodCIDR)]; got != nd.Name || len(nd.Spec.PodCIDRs) != 1 || nd.Spec.PodCIDRs[0] != nd.Spec.PodCIDR {
				t.Fatalf("node %s has spec.podCIDR %q, podCIDRs %v; its agent was given another", nd.Name, nd.Spec.PodCIDR, nd.Spec.PodCIDRs)
			}
		}
	})
}

func listNodes(t *testing.T, env *backendtest.Env) []*corev1.Node {
	t.Helper()
	var out []*corev1.Node
	if env.Store != nil {
		nk, _ := env.Store.Kinds().ByName("Node")
		list, _, err := env.Store.List(context.Background(), nk, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list {
			out = append(out, o.(*corev1.Node))
		}
		return out
	}
	list, err := env.Cluster.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out
}

// syncBuffer is a log destination tests read while agents write.
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

// A Node whose podCIDRs lie outside the agent's --cluster-cidr (the
// controller-manager was given another range) still gets its pod network: the agent
// takes the Node's CIDR, warns, and its peers route to it.
func TestKubernetesPodCIDROutsideClusterCIDR(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd and kube-apiserver")
	}
	env := backendtest.Start(t, backendtest.Kubernetes, kubetest.Options{})
	nd := backendtest.KubeletNode("n1", underlayAddr(1))
	nd.Spec.PodCIDR, nd.Spec.PodCIDRs = "10.99.3.0/24", []string{"10.99.3.0/24"}
	env.Cluster.Apply(nd)
	var logs syncBuffer
	a := startAgentWith(t, env, "n1", 1, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	b := startAgent(t, env, "n2", 2, nil)
	if nn := <-a.pub; nn.PodCIDR != netip.MustParsePrefix("10.99.3.0/24") || nn.Gateway != netip.MustParseAddr("10.99.3.1") {
		t.Fatalf("n1 published %+v, want the Node's 10.99.3.0/24", nn)
	}
	<-b.pub
	<-a.ready
	if !strings.Contains(logs.String(), "outside fjord's cluster CIDR") {
		t.Fatalf("no warning about the pod CIDR outside 10.244.0.0/16:\n%s", logs.String())
	}
	eventually(t, "n2 routes 10.99.3.0/24 to n1", func() bool { return strings.Contains(routesTo(b.k), "10.99.3.0/24") })
	eventually(t, "n1 routes to n2", func() bool { return strings.Count(routesTo(a.k), "onlink") == 1 })
}
