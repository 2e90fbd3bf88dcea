package cni

import (
	"errors"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/fjord-net/fjord/internal/ipam"
	"github.com/fjord-net/fjord/internal/ipam/diskstore"
)

// Add attaches the pod: allocate an address, create and configure the veth pair,
// print the result. Any failure undoes every step already taken, so a failed ADD
// leaves no interface and no allocation behind.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	inv, err := prepare(args)
	if err != nil {
		return err
	}
	defer inv.podNS.Close()
	conf, podNS, node, prev := inv.conf, inv.podNS, inv.node, inv.prev
	k, err := openKernel(podNS)
	if err != nil {
		return kernelError("opening netlink", err)
	}
	defer k.close()
	store, err := diskstore.Open(conf.allocDir())
	if err != nil {
		return errorf(ErrStore, "allocation directory: %v", err)
	}
	defer store.Close()

	var undo undoStack
	done := false
	defer func() {
		if !done {
			undo.run()
		}
	}()
	owner := ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	pod, terr := podOf(args.Args)
	if terr != nil {
		return terr
	}
	ip, err := p.allocate(store, node.pool, owner, pod, &undo)
	if err != nil {
		return err
	}
	att := newAttachment(conf.Name, args.Netns, owner, ip, node.net.Gateway, node.mtu)
	w, err := p.wire(k, podNS, att, &undo)
	if err != nil {
		return err
	}
	if err := printResult(p.Stdout, buildResult(att, w, prev), conf.CNIVersion); err != nil {
		return err
	}
	done = true
	return nil
}

// allocate reserves owner's address; a fresh reservation is undone on failure, a
// reused one (a retried ADD) is left alone.
func (p *Plugin) allocate(s *diskstore.Store, pool ipam.Pool, o ipam.Owner, pod string, undo *undoStack) (ip netip.Addr, err error) {
	ip, fresh, err := ipam.AllocateFor(s, pool, o, pod)
	if errors.Is(err, ipam.ErrExhausted) {
		return ip, errorf(ErrPoolExhausted, "pod CIDR %v: %v", pool.Prefix(), err)
	}
	if err != nil {
		return ip, errorf(ErrStore, "allocating an address: %v", err)
	}
	if fresh {
		undo.push(func() { _, _ = ipam.Release(s, o) })
	}
	return ip, p.step("allocate")
}
