package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/store"
)

// watchNodes keeps a.peers equal to the Nodes in the store: List, then Watch from the
// List's revision (no gap for a node to fall into), and List again after any watch
// failure. On a store outage the map simply stops changing.
func (a *Agent) watchNodes(ctx context.Context, stop context.CancelCauseFunc) {
	kind := a.nodeKind()
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		list, rev, err := a.deps.Store.List(ctx, kind, "")
		if err == nil {
			delay = 200 * time.Millisecond
			peers := map[string]podnet.Peer{}
			for _, o := range list {
				p := peerOf(o.(*corev1.Node))
				peers[p.Name] = p
			}
			if _, ok := peers[a.cfg.NodeName]; !ok {
				stop(fmt.Errorf("node %s was deleted from the store; stopping (restart the agent to register again)", a.cfg.NodeName))
				return
			}
			a.setPeers(peers, true)
			err = a.follow(ctx, kind, rev, stop)
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("node watch interrupted; the data plane keeps its last state", "err", err, "retry", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (a *Agent) follow(ctx context.Context, kind objects.Kind, rev int64, stop context.CancelCauseFunc) error {
	events, errc := a.deps.Store.Watch(ctx, kind, "", rev)
	for ev := range events {
		n := ev.Object.(*corev1.Node)
		a.mu.Lock()
		if ev.Type == store.Delete {
			delete(a.peers, n.Name)
		} else {
			a.peers[n.Name] = peerOf(n)
		}
		a.mu.Unlock()
		if ev.Type == store.Delete && n.Name == a.cfg.NodeName {
			stop(fmt.Errorf("node %s was deleted from the store; stopping (restart the agent to register again)", n.Name))
			return nil
		}
		a.poke()
	}
	return <-errc
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
