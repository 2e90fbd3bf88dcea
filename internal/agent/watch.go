package agent

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/store"
)

// watchNodes keeps a.peers equal to the Nodes in the store through a store.Mirror
// (List, then Watch from the list's revision, relist after failures). On a store
// outage the mirror, and so the plan, simply stops changing. If this node's own Node
// disappears, the agent stops: it does not re-register behind an operator's back.
func (a *Agent) watchNodes(ctx context.Context, stop context.CancelCauseFunc) {
	var m *store.Mirror
	m = a.deps.Store.NewMirror(a.nodeKind(), "", a.log, func() {
		peers := map[string]podnet.Peer{}
		for _, o := range m.Objects() {
			p := peerOf(o.(*corev1.Node))
			peers[p.Name] = p
		}
		if _, ok := peers[a.cfg.NodeName]; !ok {
			stop(fmt.Errorf("node %s was deleted from the store; stopping (restart the agent to register again)", a.cfg.NodeName))
			return
		}
		a.setPeers(peers, true)
	})
	m.Run(ctx)
}

func (a *Agent) setPeers(p map[string]podnet.Peer, synced bool) {
	a.mu.Lock()
	a.peers, a.synced = p, synced
	a.mu.Unlock()
	a.poke()
}

func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// peerOf reads what the plan needs from a Node.
func peerOf(n *corev1.Node) podnet.Peer {
	p := podnet.Peer{Name: n.Name, VTEPMAC: n.Annotations[AnnotationVTEPMAC]}
	if n.Annotations[AnnotationBackend] == string(podnet.ModeRouted) {
		p.VTEPMAC = ""
	}
	for _, ad := range n.Status.Addresses {
		if ad.Type == corev1.NodeInternalIP {
			if ip, err := netip.ParseAddr(ad.Address); err == nil {
				p.NodeIP = ip
				break
			}
		}
	}
	if c, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
		p.PodCIDR = c
	}
	return p
}
