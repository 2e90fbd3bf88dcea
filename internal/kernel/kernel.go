// Package kernel applies pod-network state to the Linux kernel over rtnetlink
// (vishvananda/netlink) and reads back what fjord owns: its vxlan device, routes marked
// with podnet.RouteProtocol, and the permanent neighbour and FDB entries on its device.
// It decides nothing; podnet computes what to change.
package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/podnet"
)

// Netlink is the real kernel, in the network namespace of its handle.
type Netlink struct {
	h *netlink.Handle
}

// New wraps a netlink handle (netlink.NewHandle() for the current namespace,
// netlink.NewHandleAt for another).
func New(h *netlink.Handle) *Netlink { return &Netlink{h: h} }

// retry re-runs a netlink dump that the kernel interrupted because the table changed
// underneath it (NLM_F_DUMP_INTR); the partial result must not be trusted.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := 0; i < 5; i++ {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// Observe reads the fjord-owned state: routes of both of fjord's protocols
// (podnet.RouteProtocol, podnet.BGPRouteProtocol), and the vxlan device's entries. devName is the vxlan device's name ("" in
// routed mode, where only routes are read).
func (k *Netlink) Observe(devName string) (podnet.State, error) {
	var st podnet.State
	names := map[int]string{}
	links, err := retry(k.h.LinkList)
	if err != nil {
		return st, fmt.Errorf("list links: %w", err)
	}
	var dev netlink.Link
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		if devName != "" && l.Attrs().Name == devName {
			dev = l
		}
	}
	for _, proto := range []netlink.RouteProtocol{podnet.RouteProtocol, podnet.BGPRouteProtocol} {
		routes, err := retry(func() ([]netlink.Route, error) {
			return k.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: proto, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return st, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			st.Routes = append(st.Routes, fromRoute(r, names))
		}
	}
	if dev == nil {
		return st, nil
	}
	vx, ok := dev.(*netlink.Vxlan)
	if !ok {
		return st, fmt.Errorf("link %s exists but is a %s, not vxlan; fjord will not touch it", devName, dev.Type())
	}
	st.Device = fromVxlan(vx, names)
	addrs, err := retry(func() ([]netlink.Addr, error) { return k.h.AddrList(dev, netlink.FAMILY_ALL) })
	if err != nil {
		return st, fmt.Errorf("list addresses of %s: %w", devName, err)
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			st.Addrs = append(st.Addrs, p)
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		neighs, err := retry(func() ([]netlink.Neigh, error) { return k.h.NeighList(dev.Attrs().Index, fam) })
		if err != nil {
			return st, fmt.Errorf("list neighbours of %s: %w", devName, err)
		}
		for _, n := range neighs {
			if n.State&netlink.NUD_PERMANENT == 0 || n.HardwareAddr == nil {
				continue
			}
			ip, _ := netip.AddrFromSlice(n.IP)
			st.Neighs = append(st.Neighs, podnet.Neigh{IP: ip.Unmap(), MAC: n.HardwareAddr.String(), Dev: devName})
		}
	}
	fdb, err := retry(func() ([]netlink.Neigh, error) { return k.h.NeighList(dev.Attrs().Index, unix.AF_BRIDGE) })
	if err != nil {
		return st, fmt.Errorf("list fdb of %s: %w", devName, err)
	}
	for _, n := range fdb {
		if n.IP == nil || n.HardwareAddr == nil || n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		st.FDB = append(st.FDB, podnet.FDB{MAC: n.HardwareAddr.String(), Dst: ip.Unmap(), Dev: devName})
	}
	return st, nil
}

func fromVxlan(vx *netlink.Vxlan, names map[int]string) *podnet.Device {
	local, _ := netip.AddrFromSlice(vx.SrcAddr)
	return &podnet.Device{
		Name: vx.Name, VNI: vx.VxlanId, Port: vx.Port, Local: local.Unmap(),
		Underlay: names[vx.VtepDevIndex], MTU: vx.MTU, MAC: vx.HardwareAddr.String(),
	}
}

func fromRoute(r netlink.Route, names map[int]string) podnet.Route {
	out := podnet.Route{BGP: r.Protocol == podnet.BGPRouteProtocol}
	if r.Dst != nil {
		out.Dst, _ = prefixOf(r.Dst)
	}
	if r.Type == unix.RTN_UNREACHABLE {
		out.Unreachable = true
		return out
	}
	if r.Gw != nil {
		gw, _ := netip.AddrFromSlice(r.Gw)
		out.Gw = gw.Unmap()
	}
	out.Dev = names[r.LinkIndex]
	out.OnLink = r.Flags&int(netlink.FLAG_ONLINK) != 0
	return out
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
