package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Underlay describes the interface node-to-node traffic leaves by.
type Underlay struct {
	Name   string
	Addr   netip.Addr // the node's address on it
	MTU    int
	OnLink []netip.Prefix // directly connected prefixes
}

// FindUnderlay returns interface name's details; with name "" it picks the interface of
// the default route, else the only up interface with a global address.
func (k *Netlink) FindUnderlay(name string, want netip.Addr) (Underlay, error) {
	var u Underlay
	if name == "" {
		var err error
		if name, err = k.guessUnderlay(want); err != nil {
			return u, err
		}
	}
	l, err := k.h.LinkByName(name)
	if err != nil {
		return u, fmt.Errorf("underlay interface %q: %w", name, err)
	}
	u.Name, u.MTU = name, l.Attrs().MTU
	addrs, err := retry(func() ([]netlink.Addr, error) { return k.h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return u, err
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		u.OnLink = append(u.OnLink, p.Masked())
		if !u.Addr.IsValid() && (!want.IsValid() || want == p.Addr()) {
			u.Addr = p.Addr()
		}
	}
	if want.IsValid() && u.Addr != want {
		return u, fmt.Errorf("underlay interface %s does not carry address %v", name, want)
	}
	if !u.Addr.IsValid() {
		return u, fmt.Errorf("underlay interface %s has no global address", name)
	}
	return u, nil
}

func (k *Netlink) guessUnderlay(want netip.Addr) (string, error) {
	links, err := retry(k.h.LinkList)
	if err != nil {
		return "", err
	}
	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	if want.IsValid() {
		for _, l := range links {
			addrs, _ := k.h.AddrList(l, netlink.FAMILY_ALL)
			for _, a := range addrs {
				if p, ok := prefixOf(a.IPNet); ok && p.Addr() == want {
					return l.Attrs().Name, nil
				}
			}
		}
		return "", fmt.Errorf("no interface carries --node-ip %v", want)
	}
	routes, _ := k.h.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil && r.LinkIndex > 0 {
			return byIndex[r.LinkIndex], nil
		}
	}
	var candidates []string
	for _, l := range links {
		if l.Attrs().Flags&unix.IFF_LOOPBACK != 0 || l.Attrs().OperState == netlink.OperDown || l.Type() == "vxlan" || l.Type() == "veth" && len(l.Attrs().Name) > 2 && l.Attrs().Name[:2] == "fj" {
			continue
		}
		addrs, _ := k.h.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			if a.IP.IsGlobalUnicast() {
				candidates = append(candidates, l.Attrs().Name)
				break
			}
		}
	}
	if len(candidates) == 1 {
		return candidates[0], nil
	}
	return "", fmt.Errorf("cannot tell the underlay interface (no default route; candidates %v): pass --iface", candidates)
}

// EnableForwarding turns on IPv4 forwarding in the calling thread's network namespace
// (procfs answers for the opener's namespace): a node must forward between pods and the
// overlay. The agent runs in its node's namespace, so that is the one it changes.
func (k *Netlink) EnableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return errors.Join(fmt.Errorf("enable IPv4 forwarding"), err)
	}
	return nil
}
