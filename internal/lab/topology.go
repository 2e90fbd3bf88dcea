package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fjord-net/fjord/internal/namedns"
)

// nsHandle opens a netlink handle in a named namespace.
func nsHandle(name string) (*netlink.Handle, netns.NsHandle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("open netns %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, 0, err
	}
	return h, ns, nil
}

// buildUnderlay creates the underlay namespace with its bridge, and the host veth whose
// root-namespace end carries the first address of the subnet.
func (c Config) buildUnderlay() error {
	if err := namedns.Create(c.UnderlayNS()); err != nil {
		return err
	}
	h, ns, err := nsHandle(c.UnderlayNS())
	if err != nil {
		return err
	}
	defer h.Close()
	defer ns.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", MTU: c.UnderlayMTU}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("create underlay bridge: %w", err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return err
	}
	// Host veth: root end "fjord-<name>", underlay end "host" on the bridge.
	root, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer root.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: c.HostLink(), MTU: c.UnderlayMTU}, PeerName: "host", PeerNamespace: netlink.NsFd(ns)}
	if err := root.LinkAdd(veth); err != nil {
		return fmt.Errorf("create host link %s: %w", c.HostLink(), err)
	}
	hostEnd, err := root.LinkByName(c.HostLink())
	if err != nil {
		return err
	}
	if err := root.AddrAdd(hostEnd, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(c.HostAddr(), c.Subnet.Bits()))}); err != nil {
		return fmt.Errorf("address host link: %w", err)
	}
	if err := root.LinkSetUp(hostEnd); err != nil {
		return err
	}
	if err := c.attach(h, "host"); err != nil {
		return err
	}
	if c.racked() {
		if err := c.buildRacks(h, ns); err != nil {
			return err
		}
		return c.hostRackRoutes(root, hostEnd)
	}
	return nil
}

func (c Config) attach(h *netlink.Handle, port string) error { return c.attachTo(h, port, "br0") }

func (c Config) attachTo(h *netlink.Handle, port, bridge string) error {
	l, err := h.LinkByName(port)
	if err != nil {
		return err
	}
	br, err := h.LinkByName(bridge)
	if err != nil {
		return err
	}
	if err := h.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("attach %s to the underlay bridge: %w", port, err)
	}
	return h.LinkSetUp(l)
}

// buildNode creates node i's namespace with eth0 on the underlay bridge.
func (c Config) buildNode(i int) error {
	name := c.NodeNS(i)
	if err := namedns.Create(name); err != nil {
		return err
	}
	nh, nns, err := nsHandle(name)
	if err != nil {
		return err
	}
	defer nh.Close()
	defer nns.Close()
	uh, uns, err := nsHandle(c.UnderlayNS())
	if err != nil {
		return err
	}
	defer uh.Close()
	defer uns.Close()
	port := c.NodeName(i)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port, MTU: c.UnderlayMTU}, PeerName: "eth0", PeerNamespace: netlink.NsFd(nns)}
	if err := uh.LinkAdd(veth); err != nil {
		return fmt.Errorf("create node %d link: %w", i, err)
	}
	if err := c.attachTo(uh, port, c.rackBridge(c.Rack(i))); err != nil {
		return err
	}
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := nh.AddrAdd(eth0, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(c.NodeAddr(i), c.Subnet.Bits()))}); err != nil {
		return err
	}
	if err := nh.LinkSetUp(eth0); err != nil {
		return err
	}
	if c.racked() {
		return c.nodeRackRoutes(nh, i)
	}
	return nil
}

// labNamespaces lists every named namespace of this lab, including pods'.
func (c Config) labNamespaces() []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.Prefix()+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// removeTopology deletes every namespace and the host link. Links inside namespaces go
// with them. Missing pieces are fine: this also cleans up after a crash.
func (c Config) removeTopology() error {
	var errs []error
	// Pods first, then nodes, then the underlay: a namespace is freed when its
	// last reference goes, and veth peers vanish with either end.
	for _, n := range c.labNamespaces() {
		if err := netns.DeleteNamed(n); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", n, err))
		}
	}
	if root, err := netlink.NewHandle(); err == nil {
		if l, err := root.LinkByName(c.HostLink()); err == nil {
			if err := root.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete link %s: %w", c.HostLink(), err))
			}
		}
		root.Close()
	}
	return errors.Join(errs...)
}

// checkSubnetFree refuses a subnet that the host already routes somewhere else.
func (c Config) checkSubnetFree() error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		p := netip.PrefixFrom(a.Unmap(), ones)
		if ones > 0 && p.Overlaps(c.Subnet) { // the default route overlaps everything
			name := ""
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				name = l.Attrs().Name
			}
			return fmt.Errorf("--subnet %v overlaps the host route %v dev %s; pick another range inside 198.18.0.0/15", c.Subnet, p, name)
		}
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// nodeNSPath is the bind-mount path of node i's namespace.
func (c Config) nodeNSPath(i int) string { return filepath.Join("/run/netns", c.NodeNS(i)) }
