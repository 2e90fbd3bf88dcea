package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/source"
)

// watchNodes keeps a.peers equal to the Nodes the shared informer holds: every change
// of a peer rebuilds the map from the informer's cache and pokes the reconcile loop. Until the
// informer has listed once and holds this node's own Node (registered just before;
// the informer may not have seen it yet), nothing is programmed. If the own Node
// disappears after that the agent stops: it does not re-register behind an
// operator's back (in a cluster, the DaemonSet restarts it once the kubelet has
// registered the Node again).
func (a *Agent) watchNodes(ctx context.Context, stop context.CancelCauseFunc) error {
	var seenSelf atomic.Bool
	rebuild := func() {
		if !a.deps.Nodes.HasSynced() {
			return
		}
		peers := map[string]podnet.Peer{}
		var nodes []bgp.Node
		for _, n := range source.List[*corev1.Node](a.deps.Nodes) {
			p := peerOf(n)
			peers[p.Name] = p
			nodes = append(nodes, bgpNodeOf(n, p))
		}
		if _, ok := peers[a.cfg.NodeName]; !ok {
			if seenSelf.Load() {
				stop(fmt.Errorf("node %s was deleted; stopping (restart the agent to register again)", a.cfg.NodeName))
			}
			return
		}
		seenSelf.Store(true)
		a.mu.Lock()
		a.nodes = nodes
		a.mu.Unlock()
		a.setPeers(peers, true)
	}
	// A Node update that leaves its peer as it was (a kubelet's status heartbeat)
	// costs one peerOf, not a rebuild over every Node.
	if err := source.OnObject(a.deps.Nodes, func(n *corev1.Node, deleted bool) {
		if !deleted && a.holds(peerOf(n)) {
			return
		}
		rebuild()
	}); err != nil {
		return err
	}
	// The informer may have listed before the handler was added; its replayed adds
	// come before HasSynced, so look once it has.
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), a.deps.Nodes.HasSynced) {
			rebuild()
		}
	}()
	return nil
}

// holds reports whether the complete peer map already has p, as it is.
func (a *Agent) holds(p podnet.Peer) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, ok := a.peers[p.Name]
	return a.synced && ok && cur == p
}

// setPeers records the peers and, if they changed, pokes the reconcile loop. Most
// Node updates change nothing a peer is made of (a kubelet posts its status every
// 10 s to 5 min): those cost a map rebuild, not a look at the kernel.
func (a *Agent) setPeers(p map[string]podnet.Peer, synced bool) {
	a.mu.Lock()
	changed := synced != a.synced || !maps.Equal(p, a.peers)
	a.peers, a.synced = p, synced
	a.mu.Unlock()
	if changed {
		a.poke()
	}
}

func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// peerOf reads what the plan needs from a Node: fjord's annotations first (what the
// node's agent published), the kubelet's InternalIP when the annotation is missing.
func peerOf(n *corev1.Node) podnet.Peer {
	p := podnet.Peer{Name: n.Name, VTEPMAC: n.Annotations[nodereg.AnnotationVTEPMAC]}
	if n.Annotations[nodereg.AnnotationBackend] == string(podnet.ModeRouted) {
		p.VTEPMAC = ""
	}
	if ip, err := netip.ParseAddr(n.Annotations[nodereg.AnnotationNodeIP]); err == nil {
		p.NodeIP = ip
	} else {
		for _, ad := range n.Status.Addresses {
			if ad.Type == corev1.NodeInternalIP {
				if ip, err := netip.ParseAddr(ad.Address); err == nil && ip.Is4() {
					p.NodeIP = ip
					break
				}
			}
		}
	}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if c, err := netip.ParsePrefix(c); err == nil && c.Addr().Is4() {
			p.PodCIDR = c
			break
		}
	}
	return p
}
