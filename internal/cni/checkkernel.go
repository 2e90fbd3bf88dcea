package cni

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// checkPod compares the pod end against att.
func checkPod(k *kernel, att attachment) error {
	l, err := k.pod.LinkByName(att.Owner.IfName)
	if err != nil {
		return err
	}
	if err := checkLink(l, att.MTU); err != nil {
		return err
	}
	if err := checkAddr(k.pod, l, hostPrefix(att.PodIP)); err != nil {
		return err
	}
	routes, err := retryDump(func() ([]netlink.Route, error) { return k.pod.RouteList(l, familyOf(att.PodIP)) })
	if err != nil {
		return err
	}
	for _, want := range podRoutes(l.Attrs().Index, att) {
		if !hasRoute(routes, want) {
			return fmt.Errorf("route to %v missing", want.Dst)
		}
	}
	return nil
}

// checkHost compares the host end against att.
func checkHost(k *kernel, att attachment) error {
	l, err := k.hostVeth(att.HostVeth, att.Alias)
	if err != nil {
		return err
	}
	if l == nil {
		return fmt.Errorf("missing (or not this network's)")
	}
	if err := checkLink(l, att.MTU); err != nil {
		return err
	}
	if err := checkAddr(k.host, l, hostPrefix(att.Gateway)); err != nil {
		return err
	}
	routes, err := retryDump(func() ([]netlink.Route, error) { return k.host.RouteList(l, familyOf(att.PodIP)) })
	if err != nil {
		return err
	}
	if want := hostRoute(l.Attrs().Index, att); !hasRoute(routes, want) {
		return fmt.Errorf("route to %v missing", want.Dst)
	}
	return nil
}

func checkLink(l netlink.Link, mtu int) error {
	a := l.Attrs()
	switch {
	case l.Type() != "veth":
		return fmt.Errorf("is a %s, not a veth", l.Type())
	case a.MTU != mtu:
		return fmt.Errorf("MTU %d, want %d", a.MTU, mtu)
	case a.Flags&net.FlagUp == 0:
		return fmt.Errorf("is down")
	}
	return nil
}

func checkAddr(h *netlink.Handle, l netlink.Link, want netip.Prefix) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, familyOf(want.Addr())) })
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if prefixOf(a.IPNet) == want {
			return nil
		}
	}
	return fmt.Errorf("address %v missing", want)
}

// hasRoute reports whether routes holds one matching want's destination, gateway and
// device (scope is only compared for link routes).
func hasRoute(routes []netlink.Route, want netlink.Route) bool {
	for _, r := range routes {
		dst := prefixOf(r.Dst)
		if r.Dst == nil { // netlink reports the default route without a destination
			dst = defaultPrefix(prefixOf(want.Dst).Addr())
		}
		if r.LinkIndex != want.LinkIndex || dst != prefixOf(want.Dst) || !r.Gw.Equal(want.Gw) {
			continue
		}
		if want.Gw == nil && r.Scope != want.Scope {
			continue
		}
		return true
	}
	return false
}

// prefixOf converts (nil gives the invalid Prefix).
func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, _ := netip.AddrFromSlice(n.IP)
	if a.Is4In6() {
		a = a.Unmap()
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
