package agent_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/kernel/fakekernel"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

// fakeSpeaker records the config the agent sets and hands back the paths a test says
// were learned.
type fakeSpeaker struct {
	mu      sync.Mutex
	cfg     bgp.Config
	learned []podnet.Learned
	synced  bool
	stopped bool
	changed chan struct{}
}

func (f *fakeSpeaker) Set(_ context.Context, c bgp.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = c
	return nil
}
func (f *fakeSpeaker) Learned() ([]podnet.Learned, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]podnet.Learned(nil), f.learned...), nil
}
func (f *fakeSpeaker) Synced(context.Context) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.synced }
func (f *fakeSpeaker) Changed() <-chan struct{}    { return f.changed }
func (f *fakeSpeaker) Stop()                       { f.mu.Lock(); defer f.mu.Unlock(); f.stopped = true }
func (f *fakeSpeaker) set(learned []podnet.Learned, synced bool) {
	f.mu.Lock()
	f.learned, f.synced = learned, synced
	f.mu.Unlock()
	f.changed <- struct{}{}
}
func (f *fakeSpeaker) config() string { f.mu.Lock(); defer f.mu.Unlock(); return f.cfg.String() }

// One bgp-mode agent against a real store, with fake kernel and speaker: the objects
// configure the speaker, learned paths become proto-78 routes, a restart keeps them
// until the speaker is synced, and a deleted node withdraws (Stop).
func TestBGPAgent(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	mesh := false
	conf := &objects.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	conf.Spec.NodeToNodeMeshEnabled = &mesh
	peer := &objects.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: objects.BGPPeerSpec{PeerIP: "198.18.0.254", ASNumber: 65000}}
	if _, err := s.Apply(ctx, []objects.Object{conf, peer}); err != nil {
		t.Fatal(err)
	}
	k := &fakekernel.Kernel{Underlay: kernel.Underlay{Name: "eth0", Addr: netip.MustParseAddr("198.18.0.11"), MTU: 1500,
		OnLink: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}}
	run := func(sp *fakeSpeaker) (context.CancelFunc, chan error, chan struct{}) {
		src := source.New(source.NewStore(s), 0)
		ready := make(chan struct{})
		a, err := agent.New(agent.Config{
			NodeName: "n1", Mode: podnet.ModeBGP, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), NodeCIDRBits: 24,
			VNI: 1, Port: 8472, RunDir: t.TempDir(), Resync: time.Hour, BGP: agent.BGPConfig{Encap: podnet.EncapNever, AS: 65001},
		}, agent.Deps{Registrar: nodereg.NewEtcd(s, 5*time.Second, nil), Nodes: src.Nodes(), Kernel: k, Ready: func() { close(ready) },
			BGP: agent.BGPDeps{Speaker: sp, Configurations: src.Informer("BGPConfiguration"), Peers: src.Informer("BGPPeer"), Leases: src.Leases(nodereg.LeaseNamespace)}})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		src.Start(cctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(cctx) }()
		return cancel, done, ready
	}
	sp := &fakeSpeaker{changed: make(chan struct{}, 1)}
	cancel, done, ready := run(sp)
	<-ready
	eventually(t, "the speaker is configured from the objects and the flag", func() bool {
		c := sp.config()
		return strings.Contains(c, "router-id 198.18.0.11 as 65001") && strings.Contains(c, "advertise 10.244.") &&
			strings.Contains(c, "peer BGPPeer tor 198.18.0.254 AS 65000") && !strings.Contains(c, "peer node")
	})
	nk, _ := s.Kinds().ByName("Node")
	o, err := s.Get(ctx, nk, "", "n1")
	if err != nil || o.(*corev1.Node).Annotations[nodereg.AnnotationBGPASNumber] != "65001" || o.(*corev1.Node).Annotations[nodereg.AnnotationVTEPMAC] != "" {
		t.Fatalf("n1's Node: %+v %v", o, err)
	}
	learned := []podnet.Learned{{Prefix: netip.MustParsePrefix("10.244.200.0/24"), NextHop: netip.MustParseAddr("198.18.0.254")}}
	sp.set(learned, true)
	const route = "route 10.244.200.0/24 via 198.18.0.254 dev eth0 proto bgp"
	eventually(t, "the learned path is programmed", func() bool { return strings.Contains(routesTo(k), route) })

	// Restart: the new speaker has learned nothing yet and is not synced; the route stays.
	cancel()
	<-done
	sp2 := &fakeSpeaker{changed: make(chan struct{}, 1)}
	cancel, done, ready = run(sp2)
	defer func() { cancel(); <-done }()
	<-ready
	time.Sleep(300 * time.Millisecond)
	if !strings.Contains(routesTo(k), route) {
		t.Fatalf("a restart removed a route before the speaker was synced:\n%s", routesTo(k))
	}
	sp2.set(nil, true)
	eventually(t, "the withdrawn path's route goes once synced", func() bool { return !strings.Contains(routesTo(k), route) })

	if err := s.Delete(ctx, nk, "", "n1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
	case <-time.After(20 * time.Second):
		t.Fatal("the agent kept running after its Node was deleted")
	}
	sp2.mu.Lock()
	defer sp2.mu.Unlock()
	if !sp2.stopped {
		t.Fatal("a deleted node must end its sessions (withdraw its routes)")
	}
}
