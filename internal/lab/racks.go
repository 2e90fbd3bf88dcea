package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/namedns"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/store"
)

// A lab with --racks N > 1 is an L3 underlay: rack k's nodes share a subnet (the k-th
// block of --subnet's size from --subnet on: 198.18.190.0/24, 198.18.191.0/24, ...) on
// their own bridge, and a router namespace joins the racks, running a real routing
// daemon (BIRD or FRR) as every rack's top-of-rack router. Nodes are placed round-robin:
// n1 in r1, n2 in r2, n3 in r1, ...

// The routing daemons the lab can run.
const (
	RouterBIRD = "bird"
	RouterFRR  = "frr"
)

// RouterAS is the lab router's AS; rack k's nodes are in AS RouterAS+k.
const RouterAS = 65000

func (c Config) racked() bool { return c.Racks > 1 }

// Rack returns node i's rack, 1-based.
func (c Config) Rack(i int) int {
	if !c.racked() {
		return 1
	}
	return (i-1)%c.Racks + 1
}

// RackName names rack k ("r1"); the lab labels each node with it (fjord.dev/rack).
func (c Config) RackName(k int) string { return fmt.Sprintf("r%d", k) }

// RackSubnet is rack k's subnet.
func (c Config) RackSubnet(k int) netip.Prefix {
	a := c.Subnet.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(k-1) << (32 - c.Subnet.Bits())
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), c.Subnet.Bits())
}

// RouterAddr is the router's address in rack k: the subnet's last usable address.
func (c Config) RouterAddr(k int) netip.Addr {
	s := c.RackSubnet(k)
	a := s.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += 1<<(32-s.Bits()) - 2
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// NodeAS is node i's AS in a racked bgp lab: one AS per rack.
func (c Config) NodeAS(i int) uint32 { return RouterAS + uint32(c.Rack(i)) }

// RouterNS is the router's namespace.
func (c Config) RouterNS() string { return c.Prefix() + "-rt" }

// RouterDir holds the daemon's configuration, sockets, pid files and log.
func (c Config) RouterDir() string { return filepath.Join(c.StateDir(), "router") }

// NodeRunDir is node i's agent run directory (node.json, bgp.sock).
func (c Config) NodeRunDir(i int) string { return filepath.Join(c.NodeDir(i), "run") }

func (c Config) rackBridge(k int) string { return fmt.Sprintf("br%d", k-1) }

func (c Config) rackNodeAddr(i int) netip.Addr {
	a := c.RackSubnet(c.Rack(i)).Addr()
	for j := 0; j < 10+i; j++ {
		a = a.Next()
	}
	return a
}

func (c Config) validateRacks() error {
	if c.Racks < 0 || c.Racks > 8 {
		return fmt.Errorf("--racks: %d is outside 1..8", c.Racks)
	}
	if c.Encap != "" {
		if _, err := podnet.ParseEncap(c.Encap); err != nil {
			return fmt.Errorf("--encap: %w", err)
		}
		if c.Mode != podnet.ModeBGP {
			return fmt.Errorf("--encap is for --mode bgp (vxlan mode always encapsulates, routed never)")
		}
	}
	if c.Router != "" && c.Router != RouterBIRD && c.Router != RouterFRR {
		return fmt.Errorf("--router: %q is not %s or %s", c.Router, RouterBIRD, RouterFRR)
	}
	if !c.racked() {
		if c.Mode == podnet.ModeBGP && c.Router != "" {
			return fmt.Errorf("--router %s needs --racks 2 or more: a flat lab's nodes peer with each other (full mesh)", c.Router)
		}
		return nil
	}
	if c.Kubernetes {
		return fmt.Errorf("--racks: the Kubernetes lab runs on one subnet for now")
	}
	if c.Mode == podnet.ModeRouted {
		return fmt.Errorf("--mode routed: host-gw needs every node on one L2 segment, and --racks %d puts them in %d subnets behind a router; use --mode vxlan or --mode bgp", c.Racks, c.Racks)
	}
	if c.Nodes > 250-20 || 10+c.Nodes >= 1<<(32-c.Subnet.Bits())-2 {
		return fmt.Errorf("--nodes: %d do not fit a rack of %v", c.Nodes, c.Subnet)
	}
	last := c.RackSubnet(c.Racks)
	if !benchmarkRange.Contains(last.Addr()) {
		return fmt.Errorf("--subnet: %d racks from %v reach %v, outside %v", c.Racks, c.Subnet, last, benchmarkRange)
	}
	return nil
}

// buildRacks creates the bridges of racks 2..N in the underlay namespace (rack 1 is
// br0, with the host link) and the router namespace with one leg per rack.
func (c Config) buildRacks(uh *netlink.Handle, uns netns.NsHandle) error {
	for k := 2; k <= c.Racks; k++ {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: c.rackBridge(k), MTU: c.UnderlayMTU}}
		if err := uh.LinkAdd(br); err != nil {
			return fmt.Errorf("create rack %d bridge: %w", k, err)
		}
		if err := uh.LinkSetUp(br); err != nil {
			return err
		}
	}
	if err := namedns.Create(c.RouterNS()); err != nil {
		return err
	}
	rh, rns, err := nsHandle(c.RouterNS())
	if err != nil {
		return err
	}
	defer rh.Close()
	defer rns.Close()
	for k := 1; k <= c.Racks; k++ {
		leg := c.RackName(k)
		port := "rt-" + leg
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port, MTU: c.UnderlayMTU}, PeerName: leg, PeerNamespace: netlink.NsFd(rns)}
		if err := uh.LinkAdd(veth); err != nil {
			return fmt.Errorf("create router leg %s: %w", leg, err)
		}
		if err := c.attachTo(uh, port, c.rackBridge(k)); err != nil {
			return err
		}
		l, err := rh.LinkByName(leg)
		if err != nil {
			return err
		}
		if err := rh.AddrAdd(l, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(c.RouterAddr(k), c.Subnet.Bits()))}); err != nil {
			return err
		}
		if err := rh.LinkSetUp(l); err != nil {
			return err
		}
	}
	if lo, err := rh.LinkByName("lo"); err == nil {
		_ = rh.LinkSetUp(lo)
	}
	// The router forwards between racks: only inside its own namespace.
	// (/proc/sys/net answers for the namespace of the thread that opens it.)
	return ns.WithNetNSPath(filepath.Join("/run/netns", c.RouterNS()), func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
}

// nodeRackRoutes gives node i a route to every other rack's subnet through its rack's
// router: the underlay's own routing, which BGP's pod routes then ride on. No default
// route: the lab stays closed.
func (c Config) nodeRackRoutes(nh *netlink.Handle, i int) error {
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		return err
	}
	gw := c.RouterAddr(c.Rack(i))
	for k := 1; k <= c.Racks; k++ {
		if k == c.Rack(i) {
			continue
		}
		r := &netlink.Route{Dst: ipnet(c.RackSubnet(k)), Gw: gw.AsSlice(), LinkIndex: eth0.Attrs().Index, Protocol: unix.RTPROT_STATIC}
		if err := nh.RouteAdd(r); err != nil {
			return fmt.Errorf("node %d: route to rack %d: %w", i, k, err)
		}
	}
	return nil
}

// hostRackRoutes routes the other racks' subnets from the root namespace through rack
// 1's router leg, so nodes of every rack reach the store relay on the host link and its
// answers go back into the lab, never out of the host's default route. The routes go
// with the host link when the lab is removed.
func (c Config) hostRackRoutes(root *netlink.Handle, hostEnd netlink.Link) error {
	gw := c.RouterAddr(1)
	for k := 2; k <= c.Racks; k++ {
		r := &netlink.Route{Dst: ipnet(c.RackSubnet(k)), Gw: gw.AsSlice(), LinkIndex: hostEnd.Attrs().Index, Protocol: unix.RTPROT_STATIC}
		if err := root.RouteAdd(r); err != nil {
			return fmt.Errorf("host route to rack %d: %w", k, err)
		}
	}
	return nil
}

// racksPreflight checks the other racks' subnets and the routing daemon.
func (c Config) racksPreflight() error {
	if !c.racked() {
		return nil
	}
	for k := 2; k <= c.Racks; k++ {
		other := c
		other.Subnet = c.RackSubnet(k)
		if err := other.checkSubnetFree(); err != nil {
			return fmt.Errorf("rack %d: %w", k, err)
		}
	}
	return c.routerPreflight()
}

// upRacks starts the router and, in bgp mode, applies the BGPConfiguration and one
// BGPPeer per rack.
func (c Config) upRacks(ctx context.Context, st *store.Store) error {
	if c.Router == "" {
		c.Router = RouterBIRD
	}
	if err := c.startRouter(); err != nil {
		return err
	}
	objs := c.rackObjects(c.serviceCIDR().String())
	if len(objs) == 0 {
		return nil
	}
	if err := objects.Admit(objs...); err != nil {
		return err
	}
	_, err := st.Apply(ctx, objs)
	return err
}
