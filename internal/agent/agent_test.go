package agent_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/kernel/fakekernel"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
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

func startAgent(t *testing.T, s *store.Store, name string, i int, k *fakekernel.Kernel) *node {
	t.Helper()
	if k == nil {
		k = &fakekernel.Kernel{Underlay: kernel.Underlay{Name: "eth0", Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}), MTU: 1500,
			OnLink: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}}
	}
	n := &node{name: name, k: k, done: make(chan error, 1), pub: make(chan nodestate.NodeNetwork, 1), ready: make(chan struct{})}
	src := source.New(source.NewStore(s), 0) // one per agent, as one per process
	a, err := agent.New(agent.Config{
		NodeName: name, Mode: podnet.ModeVXLAN, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), NodeCIDRBits: 24,
		VNI: 1, Port: 8472, RunDir: t.TempDir(), Resync: time.Hour,
	}, agent.Deps{Registrar: nodereg.NewEtcd(s, 5*time.Second, nil), Nodes: src.Nodes(), Kernel: k,
		Publish: func(nn nodestate.NodeNetwork) error { n.pub <- nn; return nil },
		Ready:   func() { close(n.ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src.Start(ctx)
	n.cancel = cancel
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

// eventually polls cond until it holds; the deadline only bounds a broken test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never happened: %s", what)
}

func routesTo(k *fakekernel.Kernel) string { return k.State().String() }

func TestThreeAgentsBuildAMesh(t *testing.T) {
	s := storetest.New(t)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startAgent(t, s, fmt.Sprintf("n%d", i), i, nil))
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
	nk, _ := s.Kinds().ByName("Node")
	if err := s.Delete(context.Background(), nk, "", "n3"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-nodes[2].done:
		if err == nil || !strings.Contains(err.Error(), "deleted") {
			t.Fatalf("n3's agent ended with %v", err)
		}
		nodes[2].done <- err
	case <-time.After(20 * time.Second):
		t.Fatal("n3's agent kept running after its Node was deleted")
	}
	for _, n := range nodes[:2] {
		eventually(t, n.name+" forgets n3", func() bool {
			st := routesTo(n.k)
			return strings.Count(st, "onlink") == 1 && !strings.Contains(st, agent.VTEPMAC("n3"))
		})
	}
}

func TestRestartChangesNothing(t *testing.T) {
	s := storetest.New(t)
	a := startAgent(t, s, "n1", 1, nil)
	b := startAgent(t, s, "n2", 2, nil)
	<-a.pub
	first := <-b.pub
	eventually(t, "n2 programmed", func() bool { return strings.Contains(routesTo(b.k), "onlink") })
	before, applies := routesTo(b.k), b.k.Applies
	b.cancel()
	<-b.done
	b.done <- nil
	b2 := startAgent(t, s, "n2", 2, b.k)
	if again := <-b2.pub; again.PodCIDR != first.PodCIDR {
		t.Fatalf("restart moved the pod CIDR from %v to %v", first.PodCIDR, again.PodCIDR)
	}
	<-b2.ready // the restarted agent has observed the kernel and reconciled once
	if after := routesTo(b.k); after != before || b.k.Applies != applies {
		t.Fatalf("restart changed the kernel (%d applies):\nbefore\n%s\nafter\n%s", b.k.Applies-applies, before, after)
	}
}

func TestStoreOutageKeepsDataPlane(t *testing.T) {
	env := storetest.Start(t)
	a := startAgent(t, env.Store, "n1", 1, nil)
	b := startAgent(t, env.Store, "n2", 2, nil)
	<-a.pub
	<-b.pub
	eventually(t, "n1 programmed", func() bool { return strings.Contains(routesTo(a.k), "onlink") })
	before := routesTo(a.k)
	env.Server.Close()
	time.Sleep(500 * time.Millisecond)
	if after := routesTo(a.k); after != before {
		t.Fatalf("store outage changed the data plane:\n%s", after)
	}
}

func TestConcurrentClaimsNeverCollide(t *testing.T) {
	s := storetest.New(t)
	const n = 8
	var wg sync.WaitGroup
	pubs := make([]*node, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); pubs[i] = startAgent(t, s, fmt.Sprintf("c%d", i), i, nil) }(i)
	}
	wg.Wait()
	seen := map[netip.Prefix]bool{}
	for _, p := range pubs {
		nn := <-p.pub
		if seen[nn.PodCIDR] {
			t.Fatalf("pod CIDR %v handed out twice", nn.PodCIDR)
		}
		seen[nn.PodCIDR] = true
	}
	nk, _ := s.Kinds().ByName("Node")
	list, _, _ := s.List(context.Background(), nk, "")
	for _, o := range list {
		if o.(*corev1.Node).Spec.PodCIDR == "" {
			t.Fatalf("node %s has no spec.podCIDR", o.GetName())
		}
	}
}
