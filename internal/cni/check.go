package cni

import (
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fjord-net/fjord/internal/ipam"
	"github.com/fjord-net/fjord/internal/ipam/diskstore"
)

// Check verifies the attachment still looks as ADD left it: the allocation, the
// prevResult the runtime cached, the pod interface (address, routes, MTU) and the
// host veth (address, route, MTU). A difference is ErrCheckFailed naming it.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	inv, err := prepare(args)
	if err != nil {
		return err
	}
	defer inv.podNS.Close()
	conf, podNS, node, prev := inv.conf, inv.podNS, inv.node, inv.prev
	if prev == nil {
		return errorf(types.ErrInvalidNetworkConfig, "prevResult: required for CHECK")
	}
	owner := ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	ip, terr := lookupAllocation(conf, node, owner)
	if terr != nil {
		return terr
	}
	att := newAttachment(conf.Name, args.Netns, owner, ip, node.net.Gateway, node.mtu)
	if err := checkPrevResult(prev, att); err != nil {
		return errorf(ErrCheckFailed, "prevResult: %v", err)
	}
	k, err := openKernel(podNS)
	if err != nil {
		return kernelError("opening netlink", err)
	}
	defer k.close()
	if err := checkPod(k, att); err != nil {
		return errorf(ErrCheckFailed, "pod interface %s: %v", att.Owner.IfName, err)
	}
	if err := checkHost(k, att); err != nil {
		return errorf(ErrCheckFailed, "host interface %s: %v", att.HostVeth, err)
	}
	return nil
}

func lookupAllocation(conf *Config, node nodeInfo, o ipam.Owner) (netip.Addr, *types.Error) {
	store, err := diskstore.Open(conf.allocDir())
	if err != nil {
		return netip.Addr{}, errorf(ErrStore, "allocation directory: %v", err)
	}
	defer store.Close()
	ip, ok, err := ipam.Lookup(store, node.pool, o)
	if err != nil {
		return ip, errorf(ErrStore, "reading allocations: %v", err)
	}
	if !ok {
		return ip, errorf(types.ErrUnknownContainer, "container %s interface %s holds no address in %v", o.ContainerID, o.IfName, node.pool.Prefix())
	}
	return ip, nil
}

// checkPrevResult requires the cached result to name our pod interface and address.
func checkPrevResult(prev *current.Result, att attachment) error {
	want := hostPrefix(att.PodIP)
	for _, ipc := range prev.IPs {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(prev.Interfaces) {
			continue
		}
		intf := prev.Interfaces[*ipc.Interface]
		got, ok := netip.AddrFromSlice(ipc.Address.IP)
		if ok && intf.Name == att.Owner.IfName && intf.Sandbox == att.Netns && got.Unmap() == att.PodIP {
			ones, _ := ipc.Address.Mask.Size()
			if ones != want.Bits() {
				return fmt.Errorf("address %v has prefix length %d, want %d", got, ones, want.Bits())
			}
			return nil
		}
	}
	return fmt.Errorf("no entry for %s with address %v in %s", att.Owner.IfName, att.PodIP, att.Netns)
}
