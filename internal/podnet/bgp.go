package podnet

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Encap says when bgp mode wraps pod traffic in VXLAN, as Calico's encapsulation modes
// (this kernel has no IPIP, so VXLAN stands in for it).
type Encap string

const (
	// EncapNever routes every pod packet as it is: the underlay's routers must carry
	// pod routes (they peer with the nodes).
	EncapNever Encap = "never"
	// EncapCrossSubnet routes plainly to nodes on the same subnet and uses VXLAN towards
	// nodes in another subnet, for routers that do not carry pod routes.
	EncapCrossSubnet Encap = "cross-subnet"
	// EncapAlways uses VXLAN towards every node; BGP only says which node is alive and
	// owns which pod CIDR.
	EncapAlways Encap = "always"
)

// ParseEncap validates an encapsulation name.
func ParseEncap(s string) (Encap, error) {
	switch Encap(s) {
	case EncapNever, EncapCrossSubnet, EncapAlways:
		return Encap(s), nil
	}
	return "", fmt.Errorf("%q is not one of never, cross-subnet, always", s)
}

// Learned is one best path the node's BGP speaker holds: a prefix and its next hop.
type Learned struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

func (l Learned) String() string { return fmt.Sprintf("%v via %v", l.Prefix, l.NextHop) }

// BGPSelf is what bgp-mode planning needs beyond Self.
type BGPSelf struct {
	Encap Encap
	// ClusterCIDR bounds what is programmed: learned prefixes outside it (a router's
	// default route, Service ranges other nodes advertise) never reach the kernel.
	ClusterCIDR netip.Prefix
}

// PlanBGP computes the desired kernel state of a bgp-mode node from the paths its
// speaker learned. Every route to another node's pods comes from a learned path (a
// withdrawn path removes the route); the Nodes say who owns which pod CIDR, whether it
// is alive, and where its VXLAN endpoint is when the path must be encapsulated:
//
//   - a path whose next hop is on-link becomes `cidr via next-hop dev <underlay>`;
//   - towards a node in another subnet with --encap cross-subnet, or any node with
//     --encap always, the route goes through the vxlan device to that node (the same
//     entries as vxlan mode);
//   - a path whose next hop is not on-link and that may not be encapsulated is refused
//     with the reason (the router must rewrite the next hop to itself);
//   - a path to a dead node (its Lease expired) is dropped before the hold timer runs
//     out on every session;
//   - a path inside the cluster CIDR that no live Node owns is still programmed (a node
//     just joining, before its Node reached this one).
//
// The vxlan device exists unless --encap never, so that peers can always reach this
// node's pods through it.
func PlanBGP(self Self, b BGPSelf, nodes []Peer, learned []Learned) (State, []PeerError) {
	st := self.base(b.Encap != EncapNever)
	var errs []PeerError
	owners := map[netip.Prefix]Peer{}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range sorted {
		if p.Name == self.Name || !p.PodCIDR.IsValid() {
			continue
		}
		if _, dup := owners[p.PodCIDR.Masked()]; !dup {
			owners[p.PodCIDR.Masked()] = p
		}
	}
	paths := slices.Clone(learned)
	slices.SortFunc(paths, func(a, b Learned) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	done := map[netip.Prefix]bool{}
	for _, l := range paths {
		dst := l.Prefix.Masked()
		switch {
		case done[dst]:
			continue
		case !b.ClusterCIDR.IsValid() || !b.ClusterCIDR.Contains(dst.Addr()) || dst.Bits() < b.ClusterCIDR.Bits():
			continue // not a pod route
		case self.PodCIDR.IsValid() && dst.Overlaps(self.PodCIDR):
			continue // our own pods, or a path claiming part of them
		case l.NextHop == self.NodeIP:
			continue
		}
		done[dst] = true
		owner, known := owners[dst]
		name := owner.Name
		if !known {
			name = "(no Node owns " + dst.String() + ")"
		}
		if known && owner.Dead {
			errs = append(errs, PeerError{name, fmt.Sprintf("its lease expired: route to %v withdrawn", dst)})
			continue
		}
		encap := false
		if known && owner.NodeIP.IsValid() {
			switch b.Encap {
			case EncapAlways:
				encap = true
			case EncapCrossSubnet:
				encap = !onLink(self.OnLink, owner.NodeIP)
			}
		}
		if encap {
			if owner.VTEPMAC == "" {
				errs = append(errs, PeerError{name, fmt.Sprintf("needs VXLAN (--encap %s) but has not published its vxlan MAC (it runs --encap never?)", b.Encap)})
				continue
			}
			gw := GatewayAddr(dst)
			dev := self.Device.Name
			st.Neighs = append(st.Neighs, Neigh{IP: gw, MAC: owner.VTEPMAC, Dev: dev})
			st.FDB = append(st.FDB, FDB{MAC: owner.VTEPMAC, Dst: owner.NodeIP, Dev: dev})
			st.Routes = append(st.Routes, Route{Dst: dst, Gw: gw, Dev: dev, OnLink: true, BGP: true})
			continue
		}
		if !onLink(self.OnLink, l.NextHop) {
			errs = append(errs, PeerError{name, fmt.Sprintf(
				"path %v: next hop %v is not on-link from %s (%s); the router must set itself as next hop (next-hop-self), or use --encap cross-subnet",
				dst, l.NextHop, self.Underlay, prefixList(self.OnLink))})
			continue
		}
		st.Routes = append(st.Routes, Route{Dst: dst, Gw: l.NextHop, Dev: self.Underlay, BGP: true})
	}
	return st, errs
}
