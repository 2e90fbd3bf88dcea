package agent

import (
	"context"

	"github.com/fjord-net/fjord/internal/bgp"
	"slices"
	"strings"
	"time"

	"github.com/fjord-net/fjord/internal/podnet"
)

// reconcileLoop runs a reconcile whenever the peers change and every Resync period, the
// latter repairing drift such as someone deleting a route by hand.
func (a *Agent) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(a.cfg.Resync)
	defer tick.Stop()
	ready := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-tick.C:
		}
		a.mu.Lock()
		synced := a.synced
		peers := make([]podnet.Peer, 0, len(a.peers))
		for _, p := range a.peers {
			peers = append(peers, p)
		}
		nodes := a.nodes
		a.mu.Unlock()
		if !synced || a.cfg.Mode == podnet.ModeBGP && !a.bgpSynced() {
			// Never program from a partial view: a node missing from an incomplete
			// list would lose its routes.
			continue
		}
		if err := a.reconcile(ctx, peers, nodes); err != nil {
			a.log.Error("reconcile failed; retrying at next change or resync", "err", err)
			continue
		}
		if !ready {
			ready = true
			a.log.Info("pod network programmed", "peers", len(peers)-1)
			if a.deps.Ready != nil {
				a.deps.Ready()
			}
		}
	}
}

// reconcile makes the kernel match the plan for the given peers.
func (a *Agent) reconcile(ctx context.Context, peers []podnet.Peer, nodes []bgp.Node) error {
	dev := ""
	if a.encapsulates() {
		dev = a.self.Device.Name
	}
	cur, err := a.deps.Kernel.Observe(dev)
	if err != nil {
		return err
	}
	var want podnet.State
	var problems []podnet.PeerError
	if a.cfg.Mode == podnet.ModeBGP {
		if want, problems, err = a.planBGP(ctx, peers, nodes, cur); err != nil {
			a.reportProblems(problems)
			return err
		}
	} else {
		want, problems = podnet.Plan(a.self, peers)
	}
	a.reportProblems(problems)
	ch := podnet.Diff(cur, want)
	if ch.Empty() {
		return nil
	}
	a.log.Info("programming kernel", "routes+", len(ch.SetRoutes), "routes-", len(ch.DelRoutes),
		"neigh+", len(ch.SetNeighs), "neigh-", len(ch.DelNeighs), "fdb+", len(ch.SetFDB), "fdb-", len(ch.DelFDB), "device", ch.Device != nil)
	return a.deps.Kernel.Apply(ch)
}

func (a *Agent) reportProblems(problems []podnet.PeerError) {
	msgs := make([]string, 0, len(problems))
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	slices.Sort(msgs)
	joined := strings.Join(msgs, "; ")
	if joined == a.lastErr {
		return
	}
	a.lastErr = joined
	for _, m := range msgs {
		a.log.Warn("peer skipped", "reason", m)
	}
}
