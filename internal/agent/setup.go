package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
)

// setup finds the underlay, registers the Node, gets a pod CIDR and publishes the node
// network. Registrar calls are retried until ctx ends, so an agent started before its
// store (or before the kubelet registered the Node) simply waits.
func (a *Agent) setup(ctx context.Context) error {
	u, err := a.deps.Kernel.FindUnderlay(a.cfg.Iface, a.cfg.NodeIP)
	if err != nil {
		return err
	}
	mtuMode := a.cfg.Mode
	if a.encapsulates() {
		mtuMode = podnet.ModeVXLAN // pods cannot have one MTU per destination
	} else if mtuMode == podnet.ModeBGP {
		mtuMode = podnet.ModeRouted
	}
	mtu, err := podnet.PodMTU(mtuMode, u.MTU, u.Addr.Is6(), a.cfg.MTU)
	if err != nil {
		return err
	}
	a.self = podnet.Self{
		Name: a.cfg.NodeName, Mode: a.cfg.Mode, NodeIP: u.Addr, Underlay: u.Name, OnLink: u.OnLink,
		Device: podnet.Device{Name: a.cfg.DeviceName(), VNI: a.cfg.VNI, Port: a.cfg.Port, MTU: mtu, MAC: VTEPMAC(a.cfg.NodeName)},
	}
	a.log.Info("underlay", "iface", u.Name, "addr", u.Addr, "underlayMTU", u.MTU, "podMTU", mtu, "mode", a.cfg.Mode)

	id := nodereg.Identity{Node: a.cfg.NodeName, NodeIP: u.Addr, Backend: string(a.cfg.Mode), BGPAS: formatAS(a.cfg.BGP.AS), Labels: a.cfg.NodeLabels}
	if a.encapsulates() {
		id.VTEPMAC = a.self.Device.MAC
	}
	if err := retryStore(ctx, a.log, "register node", func() error { return a.deps.Registrar.Register(ctx, id) }); err != nil {
		return err
	}
	if err := retryStore(ctx, a.log, "get a pod CIDR", func() error {
		cidr, err := a.deps.Registrar.PodCIDR(ctx, a.cfg.NodeName, nodereg.Pool{CIDR: a.cfg.ClusterCIDR, Bits: a.cfg.NodeCIDRBits})
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
		var perm nodereg.Permanent
		if errors.As(err, &perm) {
			return perm.Err
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
