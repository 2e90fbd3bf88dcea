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

// Apply makes the changes, in the order documented on podnet.Changes. It keeps going
// after a failed entry so one bad peer cannot block the others, and returns every error.
func (k *Netlink) Apply(c podnet.Changes) error {
	var errs []error
	if c.Device != nil {
		if err := k.ensureDevice(*c.Device, c.RecreateDevice); err != nil {
			// Without the device nothing else on it can be programmed.
			return err
		}
	}
	link := func(name string) (netlink.Link, error) { return k.h.LinkByName(name) }
	for _, a := range c.AddAddrs {
		errs = append(errs, k.addrOp(c.Device, a, true))
	}
	for _, n := range c.SetNeighs {
		errs = append(errs, k.neigh(n.Dev, n.IP, n.MAC, false, link))
	}
	for _, f := range c.SetFDB {
		errs = append(errs, k.fdb(f, false, link))
	}
	for _, r := range c.SetRoutes {
		errs = append(errs, k.route(r, false, link))
	}
	for _, r := range c.DelRoutes {
		errs = append(errs, k.route(r, true, link))
	}
	for _, n := range c.DelNeighs {
		errs = append(errs, k.neigh(n.Dev, n.IP, n.MAC, true, link))
	}
	for _, f := range c.DelFDB {
		errs = append(errs, k.fdb(f, true, link))
	}
	for _, a := range c.DelAddrs {
		errs = append(errs, k.addrOp(c.Device, a, false))
	}
	return errors.Join(errs...)
}

func (k *Netlink) ensureDevice(d podnet.Device, recreate bool) error {
	existing, err := k.h.LinkByName(d.Name)
	if err == nil && recreate {
		if err := k.h.LinkDel(existing); err != nil {
			return fmt.Errorf("recreate %s: delete: %w", d.Name, err)
		}
		existing = nil
	}
	if existing == nil || err != nil {
		under, err := k.h.LinkByName(d.Underlay)
		if err != nil {
			return fmt.Errorf("underlay interface %s: %w", d.Underlay, err)
		}
		vx := &netlink.Vxlan{
			LinkAttrs:    netlink.LinkAttrs{Name: d.Name, MTU: d.MTU},
			VxlanId:      d.VNI,
			VtepDevIndex: under.Attrs().Index,
			SrcAddr:      net.IP(d.Local.AsSlice()),
			Port:         d.Port,
			Learning:     false,
		}
		if d.MAC != "" {
			mac, err := net.ParseMAC(d.MAC)
			if err != nil {
				return fmt.Errorf("vxlan MAC %q: %w", d.MAC, err)
			}
			vx.HardwareAddr = mac
		}
		if err := k.h.LinkAdd(vx); err != nil {
			return fmt.Errorf("create vxlan device %s: %w", d.Name, err)
		}
		existing, err = k.h.LinkByName(d.Name)
		if err != nil {
			return err
		}
	}
	if existing.Attrs().MTU != d.MTU {
		if err := k.h.LinkSetMTU(existing, d.MTU); err != nil {
			return fmt.Errorf("set MTU of %s to %d: %w", d.Name, d.MTU, err)
		}
	}
	if d.MAC != "" && existing.Attrs().HardwareAddr.String() != d.MAC {
		mac, _ := net.ParseMAC(d.MAC)
		if err := k.h.LinkSetHardwareAddr(existing, mac); err != nil {
			return fmt.Errorf("set MAC of %s: %w", d.Name, err)
		}
	}
	if existing.Attrs().Flags&net.FlagUp == 0 {
		if err := k.h.LinkSetUp(existing); err != nil {
			return fmt.Errorf("set %s up: %w", d.Name, err)
		}
	}
	return nil
}

// DeviceMAC returns the MAC of an existing link, "" if it does not exist.
func (k *Netlink) DeviceMAC(name string) string {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return ""
	}
	return l.Attrs().HardwareAddr.String()
}

func (k *Netlink) addrOp(dev *podnet.Device, p netip.Prefix, add bool) error {
	if dev == nil {
		return nil
	}
	l, err := k.h.LinkByName(dev.Name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: ipnet(p)}
	if add {
		err = k.h.AddrReplace(l, a)
	} else {
		err = k.h.AddrDel(l, a)
	}
	if err != nil {
		return fmt.Errorf("address %v on %s: %w", p, dev.Name, err)
	}
	return nil
}

func (k *Netlink) neigh(dev string, ip netip.Addr, mac string, del bool, link func(string) (netlink.Link, error)) error {
	l, err := link(dev)
	if err != nil {
		return fmt.Errorf("neighbour %v: %w", ip, err)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("neighbour %v: MAC %q: %w", ip, mac, err)
	}
	n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family(ip), State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST, IP: net.IP(ip.AsSlice()), HardwareAddr: hw}
	if del {
		err = k.h.NeighDel(n)
		if errors.Is(err, unix.ENOENT) {
			err = nil
		}
	} else {
		err = k.h.NeighSet(n)
	}
	if err != nil {
		return fmt.Errorf("neighbour %v lladdr %s dev %s: %w", ip, mac, dev, err)
	}
	return nil
}

func (k *Netlink) fdb(f podnet.FDB, del bool, link func(string) (netlink.Link, error)) error {
	l, err := link(f.Dev)
	if err != nil {
		return fmt.Errorf("fdb %s: %w", f.MAC, err)
	}
	hw, err := net.ParseMAC(f.MAC)
	if err != nil {
		return fmt.Errorf("fdb MAC %q: %w", f.MAC, err)
	}
	n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: net.IP(f.Dst.AsSlice()), HardwareAddr: hw}
	if del {
		err = k.h.NeighDel(n)
		if errors.Is(err, unix.ENOENT) {
			err = nil
		}
	} else {
		err = k.h.NeighSet(n)
	}
	if err != nil {
		return fmt.Errorf("fdb %s: %w", f, err)
	}
	return nil
}

func (k *Netlink) route(r podnet.Route, del bool, link func(string) (netlink.Link, error)) error {
	nr := &netlink.Route{Dst: ipnet(r.Dst), Protocol: netlink.RouteProtocol(r.Protocol()), Table: unix.RT_TABLE_MAIN}
	if r.Unreachable {
		nr.Type = unix.RTN_UNREACHABLE
	} else {
		l, err := link(r.Dev)
		if err != nil {
			return fmt.Errorf("route %s: %w", r, err)
		}
		nr.LinkIndex = l.Attrs().Index
		nr.Gw = net.IP(r.Gw.AsSlice())
		if r.OnLink {
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
	}
	var err error
	if del {
		err = k.h.RouteDel(nr)
		if errors.Is(err, unix.ESRCH) {
			err = nil
		}
	} else {
		err = k.h.RouteReplace(nr)
	}
	if err != nil {
		verb := "replace"
		if del {
			verb = "delete"
		}
		return fmt.Errorf("%s route %s: %w", verb, r, err)
	}
	return nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
