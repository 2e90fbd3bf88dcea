package cni

import (
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fjord-net/fjord/internal/ipam"
)

// GC (spec 1.1.0) releases every allocation of this network that is not in
// cni.dev/valid-attachments (or lies outside the node's current pod CIDR) and deletes
// this network's host veths that belong to no valid attachment. Other networks'
// allocations (other directories) and interfaces (other aliases) are never touched.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, terr := ParseConfig(args.StdinData)
	if terr != nil {
		return terr
	}
	if ok, _ := version.GreaterThanOrEqualTo(conf.CNIVersion, "1.1.0"); !ok {
		return errorf(types.ErrIncompatibleCNIVersion, "cniVersion: GC needs 1.1.0, config has %s", conf.CNIVersion)
	}
	valid := map[ipam.Owner]bool{}
	validVeths := map[string]bool{}
	for _, a := range conf.ValidAttachments {
		valid[ipam.Owner{ContainerID: a.ContainerID, IfName: a.IfName}] = true
		validVeths[HostVethName(a.ContainerID, a.IfName)] = true
	}
	if terr := gcLinks(conf, validVeths); terr != nil {
		return terr
	}
	if terr := gcAllocations(conf, valid); terr != nil {
		return terr
	}
	return nil
}

func gcLinks(conf *Config, valid map[string]bool) *types.Error {
	k, err := openKernel(netns.None())
	if err != nil {
		return kernelError("opening netlink", err)
	}
	defer k.close()
	links, err := retryDump(k.host.LinkList)
	if err != nil {
		return kernelError("listing links", err)
	}
	alias := hostAlias(conf.Name)
	for _, l := range staleVeths(links, alias, valid) {
		if err := k.host.LinkDel(l); err != nil && !isNotFound(err) {
			return kernelError("deleting "+l.Attrs().Name, err)
		}
	}
	return nil
}

// staleVeths picks this network's host veths that no valid attachment owns.
func staleVeths(links []netlink.Link, alias string, valid map[string]bool) []netlink.Link {
	var out []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "veth" && a.Alias == alias && strings.HasPrefix(a.Name, hostVethPrefix) &&
			isHostVethName(a.Name) && !valid[a.Name] {
			out = append(out, l)
		}
	}
	return out
}

func gcAllocations(conf *Config, valid map[ipam.Owner]bool) *types.Error {
	store, err := openExistingStore(conf.allocDir())
	if err != nil {
		return errorf(ErrStore, "allocation directory: %v", err)
	}
	if store == nil {
		return nil // nothing was ever allocated in this network
	}
	defer store.Close()
	// Without node.json the pod CIDR is unknown: then only ownership decides.
	node, nodeErr := readNode(conf)
	keep := func(a ipam.Allocation) bool {
		return valid[a.Owner] && (nodeErr != nil || node.pool.Usable(a.IP))
	}
	if _, err := ipam.GC(store, keep); err != nil {
		return errorf(ErrStore, "releasing stale addresses: %v", err)
	}
	return nil
}
