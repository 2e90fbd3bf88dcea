package cni

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// wired are the two ends ADD created, as the kernel reports them.
type wired struct {
	host, pod netlink.Link
}

// wire makes the kernel match att: the veth pair (pod end created directly inside the
// pod namespace), then the pod end's address and routes, then the host end's address
// and route. Each step pushes its inverse onto undo before the next one starts.
func (p *Plugin) wire(k *kernel, podNS netns.NsHandle, att attachment, undo *undoStack) (wired, error) {
	var w wired
	var err error
	if w.host, w.pod, err = createVeth(k, podNS, att); err != nil {
		return w, err
	}
	host := w.host
	undo.push(func() { _ = k.host.LinkDel(host) }) // removes the pod end too
	if err := p.step("veth"); err != nil {
		return w, err
	}
	if err := configurePod(k, w.pod, att); err != nil {
		return w, errorf(ErrKernel, "configuring %s in %s: %v", att.Owner.IfName, att.Netns, err)
	}
	if err := p.step("pod"); err != nil {
		return w, err
	}
	if err := configureHost(k, w.host, att); err != nil {
		return w, errorf(ErrKernel, "configuring host interface %s: %v", att.HostVeth, err)
	}
	return w, p.step("host")
}

// createVeth adds the pair and reads both ends back (for their index and MAC).
func createVeth(k *kernel, podNS netns.NsHandle, att attachment) (host, pod netlink.Link, err error) {
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.Flags = att.HostVeth, att.MTU, net.FlagUp
	veth := netlink.NewVeth(la)
	veth.PeerName = att.Owner.IfName
	veth.PeerNamespace = netlink.NsFd(podNS)
	if err := k.host.LinkAdd(veth); err != nil {
		return nil, nil, vethAddError(k, att, err)
	}
	// The kernel ignores IFLA_IFALIAS when creating a link, so it is set separately.
	if err = k.host.LinkSetAlias(veth, att.Alias); err == nil {
		host, err = k.host.LinkByName(att.HostVeth)
	}
	if err == nil {
		pod, err = k.pod.LinkByName(att.Owner.IfName)
	}
	if err != nil {
		_ = k.host.LinkDel(veth)
		return nil, nil, errorf(ErrKernel, "veth %s: %v", att.HostVeth, err)
	}
	return host, pod, nil
}

// vethAddError says which end already exists, if that is the problem.
func vethAddError(k *kernel, att attachment, err error) error {
	if !errors.Is(err, unix.EEXIST) {
		return errorf(ErrKernel, "creating veth %s/%s: %v", att.HostVeth, att.Owner.IfName, err)
	}
	if _, lerr := k.host.LinkByName(att.HostVeth); lerr == nil {
		return errorf(ErrLinkExists, "host interface %s for container %s interface %s already exists; DEL the attachment first", att.HostVeth, att.Owner.ContainerID, att.Owner.IfName)
	}
	return errorf(ErrLinkExists, "interface %s already exists in %s", att.Owner.IfName, att.Netns)
}

// podRoutes are the pod end's routes: the gateway on the link, then the default route
// through it.
func podRoutes(idx int, att attachment) []netlink.Route {
	return []netlink.Route{
		{LinkIndex: idx, Dst: ipNet(hostPrefix(att.Gateway)), Scope: netlink.SCOPE_LINK},
		{LinkIndex: idx, Dst: ipNet(defaultPrefix(att.Gateway)), Gw: att.Gateway.AsSlice()},
	}
}

// hostRoute is the host's route to the pod.
func hostRoute(idx int, att attachment) netlink.Route {
	return netlink.Route{LinkIndex: idx, Dst: ipNet(hostPrefix(att.PodIP)), Scope: netlink.SCOPE_LINK}
}

func configurePod(k *kernel, pod netlink.Link, att attachment) error {
	if err := k.pod.LinkSetUp(pod); err != nil {
		return err
	}
	if err := k.pod.AddrAdd(pod, &netlink.Addr{IPNet: ipNet(hostPrefix(att.PodIP))}); err != nil {
		return fmt.Errorf("address %v: %w", hostPrefix(att.PodIP), err)
	}
	for _, r := range podRoutes(pod.Attrs().Index, att) {
		if err := k.pod.RouteAdd(&r); err != nil {
			return fmt.Errorf("route %v: %w", r.Dst, err)
		}
	}
	return nil
}

// configureHost adds the gateway address and the route to the pod. The route replaces
// any stale one a leaked veth may still hold for this address.
func configureHost(k *kernel, host netlink.Link, att attachment) error {
	if err := k.host.AddrAdd(host, &netlink.Addr{IPNet: ipNet(hostPrefix(att.Gateway))}); err != nil {
		return fmt.Errorf("address %v: %w", hostPrefix(att.Gateway), err)
	}
	r := hostRoute(host.Attrs().Index, att)
	if err := k.host.RouteReplace(&r); err != nil {
		return fmt.Errorf("route %v: %w", r.Dst, err)
	}
	return nil
}

// kernelError wraps a netlink failure outside wire.
func kernelError(what string, err error) *types.Error {
	return errorf(ErrKernel, "%s: %v", what, err)
}
