// Package podnet decides the kernel state of a node's pod network, as plain data: from
// this node and the other nodes it computes the routes, neighbour entries, forwarding
// (FDB) entries and the vxlan device the node should have, and it diffs that desired
// state against what the kernel has. It does no I/O; internal/kernel applies the diff.
package podnet

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// RouteProtocol marks every route fjord installs (rtnetlink "proto" field), so the
// agent can tell its own routes from everyone else's and never touches the others.
const RouteProtocol = 77

// BGPRouteProtocol marks the routes fjord installs from paths its BGP speaker learned
// (`ip route` shows "proto 78"), apart from its other routes and from a routing
// daemon's ("proto bgp", 186) on the same machine.
const BGPRouteProtocol = 78

// Mode is how pod traffic crosses nodes.
type Mode string

const (
	ModeVXLAN  Mode = "vxlan"  // encapsulated, works on any IP underlay
	ModeRouted Mode = "routed" // host-gw: plain routes, needs every node on one L2 segment
	ModeBGP    Mode = "bgp"    // routes learned over BGP: nodes on any routed underlay
)

// ParseMode validates a mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeVXLAN, ModeRouted, ModeBGP:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode: %q is not one of vxlan, routed, bgp", s)
}

// VXLANOverhead is the bytes VXLAN adds over an IPv4 underlay: outer IPv4 (20) + UDP (8)
// + VXLAN (8) + inner Ethernet (14).
const VXLANOverhead = 50

// VXLANOverheadIPv6 is the same over an IPv6 underlay (outer header 40 bytes).
const VXLANOverheadIPv6 = 70

// Device is the vxlan device of a node.
type Device struct {
	Name     string
	VNI      int
	Port     int
	Local    netip.Addr // underlay source address
	Underlay string     // underlay interface name
	MTU      int
	MAC      string // fixed so that peers' neighbour entries stay valid across restarts
}

// Route is one route in the main table, owned by fjord.
type Route struct {
	Dst         netip.Prefix
	Gw          netip.Addr // invalid for unreachable routes
	Dev         string     // "" for unreachable routes
	OnLink      bool
	Unreachable bool // reject traffic to unallocated addresses of the node's own pod CIDR
	// BGP marks a route planned from a learned BGP path: it carries BGPRouteProtocol.
	BGP bool
}

// Protocol is the rtnetlink protocol the route carries.
func (r Route) Protocol() int {
	if r.BGP {
		return BGPRouteProtocol
	}
	return RouteProtocol
}

func (r Route) String() string {
	if r.Unreachable {
		return fmt.Sprintf("unreachable %v", r.Dst)
	}
	s := fmt.Sprintf("%v via %v dev %s", r.Dst, r.Gw, r.Dev)
	if r.OnLink {
		s += " onlink"
	}
	if r.BGP {
		s += " proto bgp"
	}
	return s
}

// Neigh is a permanent neighbour (ARP) entry: a peer's vxlan gateway address → its VTEP MAC.
type Neigh struct {
	IP  netip.Addr
	MAC string
	Dev string
}

func (n Neigh) String() string { return fmt.Sprintf("%v lladdr %s dev %s", n.IP, n.MAC, n.Dev) }

// FDB is a permanent forwarding entry: a peer's VTEP MAC → its underlay address.
type FDB struct {
	MAC string
	Dst netip.Addr
	Dev string
}

func (f FDB) String() string { return fmt.Sprintf("%s dst %v dev %s", f.MAC, f.Dst, f.Dev) }

// State is a node's pod-network kernel state: desired (from Plan) or observed.
type State struct {
	Device *Device        // nil in routed mode
	Addrs  []netip.Prefix // addresses on Device
	Routes []Route
	Neighs []Neigh
	FDB    []FDB
}

// String renders the state as sorted text, one entry per line: the golden format of tests.
func (s State) String() string {
	var b strings.Builder
	if s.Device != nil {
		d := s.Device
		fmt.Fprintf(&b, "device %s vni %d port %d local %v dev %s mtu %d mac %s\n", d.Name, d.VNI, d.Port, d.Local, d.Underlay, d.MTU, d.MAC)
	}
	lines := func(prefix string, items []string) {
		slices.Sort(items)
		for _, it := range items {
			fmt.Fprintf(&b, "%s %s\n", prefix, it)
		}
	}
	lines("addr", mapStrings(s.Addrs, func(p netip.Prefix) string { return p.String() }))
	lines("route", mapStrings(s.Routes, Route.String))
	lines("neigh", mapStrings(s.Neighs, Neigh.String))
	lines("fdb", mapStrings(s.FDB, FDB.String))
	return b.String()
}

func mapStrings[T any](in []T, f func(T) string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}
