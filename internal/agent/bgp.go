package agent

import (
	"context"
	"errors"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/source"
)

// BGPConfig is the agent's bgp-mode configuration (Config.BGP).
type BGPConfig struct {
	Encap podnet.Encap
	AS    uint32 // this node's AS (--bgp-as), published on its Node; 0 = from the objects
	Flags bgp.Flags
}

// Speaker is the BGP speaker the agent drives in bgp mode; *bgp.Speaker implements it.
type Speaker interface {
	Set(ctx context.Context, cfg bgp.Config) error
	Learned() ([]podnet.Learned, error)
	Synced(ctx context.Context) bool
	Changed() <-chan struct{}
	// Stop ends every session with a NOTIFICATION (Cease): peers withdraw this node's
	// routes at once. Called only when the node leaves (its Node was deleted); a
	// restart or a crash does not call it, so graceful restart keeps the routes.
	Stop()
}

// BGPDeps are bgp mode's collaborators.
type BGPDeps struct {
	Speaker Speaker
	// Configurations and Peers are informers of the BGPConfiguration and BGPPeer objects;
	// Leases is the kube-node-lease namespace's Lease informer (a node whose Lease
	// expired is dead: its routes go before every hold timer ran out).
	Configurations, Peers, Leases cache.SharedIndexInformer
}

// deadCheck is how often bgp mode re-reads the Leases' clocks: a Lease that stops being
// renewed expires without any event.
const deadCheck = 2 * time.Second

func (c BGPConfig) validate() error {
	if _, err := podnet.ParseEncap(string(c.Encap)); err != nil {
		return errors.New("--encap: " + err.Error())
	}
	return nil
}

// encapsulates says whether some pod traffic leaves through the vxlan device.
func (a *Agent) encapsulates() bool {
	return a.cfg.Mode == podnet.ModeVXLAN || a.cfg.Mode == podnet.ModeBGP && a.cfg.BGP.Encap != podnet.EncapNever
}

// watchBGP pokes the reconcile loop on every change of the BGP objects and Leases, and
// of the speaker's sessions and paths.
func (a *Agent) watchBGP(ctx context.Context) error {
	d := a.deps.BGP
	for _, inf := range []cache.SharedIndexInformer{d.Configurations, d.Peers, d.Leases} {
		if err := source.OnChange(inf, a.poke); err != nil {
			return err
		}
	}
	go func() {
		tick := time.NewTicker(deadCheck)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.Speaker.Changed():
				a.poke()
			case <-tick.C:
				a.poke()
			}
		}
	}()
	return nil
}

func (a *Agent) bgpSynced() bool {
	d := a.deps.BGP
	return d.Configurations.HasSynced() && d.Peers.HasSynced() && d.Leases.HasSynced()
}

// planBGP configures the speaker from the objects and plans the kernel from what it
// learned. Before the speaker has heard every peer's End-of-RIB, the kernel's BGP
// routes are kept.
func (a *Agent) planBGP(ctx context.Context, peers []podnet.Peer, nodes []bgp.Node, cur podnet.State) (podnet.State, []podnet.PeerError, error) {
	d := a.deps.BGP
	self := bgp.Node{Name: a.cfg.NodeName, IP: a.self.NodeIP, AS: a.cfg.BGP.AS}
	for _, n := range nodes {
		if n.Name == a.cfg.NodeName {
			self = n
			self.IP = a.self.NodeIP
			if a.cfg.BGP.AS != 0 { // the flag wins over a Node the informer has not updated yet
				self.AS = a.cfg.BGP.AS
			}
		}
	}
	cfg, problems := bgp.Resolve(self, a.self.PodCIDR, nodes,
		source.List[*objects.BGPConfiguration](d.Configurations), source.List[*objects.BGPPeer](d.Peers), a.cfg.BGP.Flags)
	for _, r := range cur.Routes {
		cfg.Restarting = cfg.Restarting || r.BGP
	}
	var perrs []podnet.PeerError
	for _, p := range problems {
		perrs = append(perrs, podnet.PeerError{Peer: "bgp", Reason: p.Error()})
	}
	if err := d.Speaker.Set(ctx, cfg); err != nil {
		return podnet.State{}, perrs, err
	}
	learned, err := d.Speaker.Learned()
	if err != nil {
		return podnet.State{}, perrs, err
	}
	now := time.Now()
	for i := range peers {
		peers[i].Dead = leaseExpired(d.Leases, peers[i].Name, now)
	}
	want, errs := podnet.PlanBGP(a.self, podnet.BGPSelf{Encap: a.cfg.BGP.Encap, ClusterCIDR: a.cfg.ClusterCIDR}, peers, learned)
	if !d.Speaker.Synced(ctx) {
		want = podnet.KeepBGP(cur, want)
	}
	return want, append(perrs, errs...), nil
}

// leaseExpired says whether node's Lease is gone or was not renewed in time. fjord's
// store deletes a dead node's Lease when its etcd lease runs out; in a Kubernetes
// cluster the kubelet's Lease simply stops being renewed.
func leaseExpired(leases cache.SharedIndexInformer, node string, now time.Time) bool {
	l, ok := source.Get[*coordinationv1.Lease](leases, nodereg.LeaseNamespace, node)
	if !ok {
		return true
	}
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// bgpNodeOf reads what bgp.Resolve needs from a Node.
func bgpNodeOf(n *corev1.Node, p podnet.Peer) bgp.Node {
	bn := bgp.Node{Name: n.Name, IP: p.NodeIP, Labels: n.Labels}
	if as, err := objects.ParseASNumber(n.Annotations[nodereg.AnnotationBGPASNumber]); err == nil {
		bn.AS = as
	}
	return bn
}

func formatAS(as uint32) string {
	if as == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(as), 10)
}
