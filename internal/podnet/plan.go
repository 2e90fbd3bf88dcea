package podnet

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Self describes the node the plan is for.
type Self struct {
	Name     string
	Mode     Mode
	NodeIP   netip.Addr   // underlay address
	PodCIDR  netip.Prefix // this node's pod range
	Underlay string       // underlay interface name
	// OnLink are the prefixes directly connected on the underlay interface; routed mode
	// needs every peer inside one of them.
	OnLink []netip.Prefix
	Device Device // the vxlan device (vxlan mode): Name, VNI, Port, MTU, MAC
}

// Peer is another node, as published in the store.
type Peer struct {
	Name    string
	NodeIP  netip.Addr
	PodCIDR netip.Prefix
	VTEPMAC string // vxlan mode: the peer's device MAC; peers without one are skipped
	// Dead is set when the node's Lease has expired (bgp mode drops its routes at once,
	// without waiting for every BGP hold timer).
	Dead bool
}

// PeerError explains why one peer was left out of the plan; the others are still planned.
type PeerError struct {
	Peer   string
	Reason string
}

func (e PeerError) Error() string { return fmt.Sprintf("node %s: %s", e.Peer, e.Reason) }

// GatewayAddr is the address a node's vxlan device carries and that peers route to: the
// network address of its pod CIDR (x.y.z.0), which the CNI plugin never hands to a pod.
func GatewayAddr(podCIDR netip.Prefix) netip.Addr { return podCIDR.Masked().Addr() }

// Plan computes the desired kernel state of self given every node (self included or
// not). Peers that cannot be programmed are reported and skipped.
func Plan(self Self, nodes []Peer) (State, []PeerError) {
	st := self.base(self.Mode == ModeVXLAN)
	var errs []PeerError
	peers := slices.Clone(nodes)
	slices.SortFunc(peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	seenCIDR := map[netip.Prefix]string{}
	if self.PodCIDR.IsValid() {
		seenCIDR[self.PodCIDR.Masked()] = self.Name
	}
	for _, p := range peers {
		if p.Name == self.Name {
			continue
		}
		if reason := p.invalid(); reason != "" {
			errs = append(errs, PeerError{p.Name, reason})
			continue
		}
		cidr := p.PodCIDR.Masked()
		if owner, dup := seenCIDR[cidr]; dup {
			errs = append(errs, PeerError{p.Name, fmt.Sprintf("pod CIDR %v is also held by node %s", cidr, owner)})
			continue
		}
		seenCIDR[cidr] = p.Name
		switch self.Mode {
		case ModeVXLAN:
			if p.VTEPMAC == "" {
				errs = append(errs, PeerError{p.Name, "has not published its vxlan MAC yet (fjord.dev/vtep-mac)"})
				continue
			}
			gw := GatewayAddr(cidr)
			dev := self.Device.Name
			// Order matters only when applying; the kernel package adds the neighbour
			// and FDB entries before the route (else the kernel would ARP for gw).
			st.Neighs = append(st.Neighs, Neigh{IP: gw, MAC: p.VTEPMAC, Dev: dev})
			st.FDB = append(st.FDB, FDB{MAC: p.VTEPMAC, Dst: p.NodeIP, Dev: dev})
			st.Routes = append(st.Routes, Route{Dst: cidr, Gw: gw, Dev: dev, OnLink: true})
		case ModeRouted:
			if !onLink(self.OnLink, p.NodeIP) {
				errs = append(errs, PeerError{p.Name, fmt.Sprintf(
					"underlay address %v is not on-link from %s (%s); routed mode needs every node on one L2 segment, use vxlan mode",
					p.NodeIP, self.Underlay, prefixList(self.OnLink))})
				continue
			}
			st.Routes = append(st.Routes, Route{Dst: cidr, Gw: p.NodeIP, Dev: self.Underlay})
		}
	}
	return st, errs
}

// base is what a node has before any peer: its vxlan device carrying its gateway
// address (withDevice), and the unreachable route for its own pod CIDR.
func (self Self) base(withDevice bool) State {
	var st State
	if withDevice {
		d := self.Device
		d.Local = self.NodeIP
		d.Underlay = self.Underlay
		st.Device = &d
		st.Addrs = []netip.Prefix{netip.PrefixFrom(GatewayAddr(self.PodCIDR), self.PodCIDR.Addr().BitLen())}
	}
	if self.PodCIDR.IsValid() {
		st.Routes = append(st.Routes, Route{Dst: self.PodCIDR.Masked(), Unreachable: true})
	}
	return st
}

func (p Peer) invalid() string {
	switch {
	case !p.NodeIP.IsValid():
		return "has no InternalIP address"
	case !p.PodCIDR.IsValid():
		return "has no pod CIDR yet"
	case p.NodeIP.Is4() != p.PodCIDR.Addr().Is4():
		// Mixed families are allowed in general, but one vxlan device carries one family.
		return ""
	}
	return ""
}

func onLink(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no connected prefixes"
	}
	return strings.Join(mapStrings(ps, netip.Prefix.String), ", ")
}
