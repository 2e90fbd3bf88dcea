package cni

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vishvananda/netns"

	"github.com/fjord-net/fjord/internal/ipam"
)

// Del detaches the pod: delete the host veth (which takes the pod end with it), then
// release the address. It needs neither the pod namespace nor node.json, and a missing
// namespace, interface or allocation is not an error: DEL is idempotent.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, terr := ParseConfig(args.StdinData)
	if terr != nil {
		return terr
	}
	if terr := validateIDs(args); terr != nil {
		return terr
	}
	k, err := openKernel(netns.None())
	if err != nil {
		return kernelError("opening netlink", err)
	}
	defer k.close()
	name := HostVethName(args.ContainerID, args.IfName)
	l, err := k.host.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return kernelError("looking up "+name, err)
	}
	// No alias: an ADD died between creating the pair and labelling it. The name is
	// derived from this very container and interface, so it is ours too.
	if l != nil && (l.Attrs().Alias == hostAlias(conf.Name) || l.Attrs().Alias == "") {
		if err := k.host.LinkDel(l); err != nil && !isNotFound(err) {
			return kernelError("deleting "+name, err)
		}
	}
	store, err := openExistingStore(conf.allocDir())
	if err != nil {
		return errorf(ErrStore, "allocation directory: %v", err)
	}
	if store == nil {
		return nil // nothing was ever allocated in this network
	}
	defer store.Close()
	if _, err := ipam.Release(store, ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName}); err != nil {
		return errorf(ErrStore, "releasing the address: %v", err)
	}
	return nil
}
