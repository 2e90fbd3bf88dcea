package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"time"

	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
)

// setup finds the underlay, registers the Node, claims a pod CIDR and publishes the
// node network. Store calls are retried until ctx ends, so an agent started before its
// store simply waits.
func (a *Agent) setup(ctx context.Context) error {
	u, err := a.deps.Kernel.FindUnderlay(a.cfg.Iface, a.cfg.NodeIP)
	if err != nil {
		return err
	}
	mtu, err := podnet.PodMTU(a.cfg.Mode, u.MTU, u.Addr.Is6(), a.cfg.MTU)
	if err != nil {
		return err
	}
	a.self = podnet.Self{
		Name: a.cfg.NodeName, Mode: a.cfg.Mode, NodeIP: u.Addr, Underlay: u.Name, OnLink: u.OnLink,
		Device: podnet.Device{Name: a.cfg.DeviceName(), VNI: a.cfg.VNI, Port: a.cfg.Port, MTU: mtu, MAC: VTEPMAC(a.cfg.NodeName)},
	}
	a.log.Info("underlay", "iface", u.Name, "addr", u.Addr, "underlayMTU", u.MTU, "podMTU", mtu, "mode", a.cfg.Mode)

	if err := retryStore(ctx, a.log, "register node", func() error { return a.register(ctx) }); err != nil {
		return err
	}
	if err := retryStore(ctx, a.log, "claim pod CIDR", func() error {
		cidr, err := a.claimPodCIDR(ctx)
		a.self.PodCIDR = cidr
		return err
	}); err != nil {
		return err
	}
	a.log.Info("pod CIDR", "cidr", a.self.PodCIDR)
	if err := a.deps.Kernel.EnableForwarding(); err != nil {
		return err
	}
	return a.deps.Publish(nodestate.NodeNetwork{
		Node: a.cfg.NodeName, Mode: string(a.cfg.Mode), PodCIDR: a.self.PodCIDR,
		Gateway: a.self.PodCIDR.Masked().Addr().Next(), MTU: mtu, ClusterCIDR: a.cfg.ClusterCIDR,
	})
}

// VTEPMAC derives the node's vxlan MAC from its name: locally administered, unicast, and
// the same after every restart or re-creation, so peers' entries never go stale.
func VTEPMAC(node string) string {
	h := sha256.Sum256([]byte("fjord-vtep/" + node))
	mac := net.HardwareAddr{0x0e, h[0], h[1], h[2], h[3], h[4]}
	return mac.String()
}

// retryStore runs f until it succeeds or ctx ends, backing off up to 5s between tries.
func retryStore(ctx context.Context, log interface{ Warn(string, ...any) }, what string, f func() error) error {
	delay := 200 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if perm, ok := err.(permanentError); ok {
			return perm.error
		}
		log.Warn(what+" failed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// permanentError stops retryStore: retrying cannot help.
type permanentError struct{ error }
