package podnet

import "net/netip"

// Changes is what must be done to move the kernel from one State to another. The kernel
// package applies it in this order, so that no packet is ever sent toward a peer whose
// entries are incomplete: device, addresses, then neighbour and FDB additions, then
// route additions; then route deletions, then neighbour and FDB deletions.
type Changes struct {
	Device         *Device // create or fix the device (nil = already right)
	RecreateDevice bool    // the existing device's VNI, port or local address differ
	AddAddrs       []netip.Prefix
	DelAddrs       []netip.Prefix
	SetNeighs      []Neigh
	SetFDB         []FDB
	SetRoutes      []Route // add or replace
	DelRoutes      []Route
	DelNeighs      []Neigh
	DelFDB         []FDB
}

// Empty reports whether nothing needs doing.
func (c Changes) Empty() bool {
	return c.Device == nil && len(c.AddAddrs)+len(c.DelAddrs)+len(c.SetNeighs)+len(c.SetFDB)+
		len(c.SetRoutes)+len(c.DelRoutes)+len(c.DelNeighs)+len(c.DelFDB) == 0
}

// Diff computes the changes from current to desired. It never deletes the device: a
// node switching from vxlan to routed mode keeps it (harmless) until `fjord agent
// --cleanup` or the operator removes it, so a misconfiguration cannot cut traffic.
func Diff(current, desired State) Changes {
	var c Changes
	if d := desired.Device; d != nil {
		cur := current.Device
		switch {
		case cur == nil:
			c.Device = d
		case cur.VNI != d.VNI || cur.Port != d.Port || cur.Local != d.Local || cur.Underlay != d.Underlay:
			c.Device, c.RecreateDevice = d, true
		case cur.MTU != d.MTU || (d.MAC != "" && cur.MAC != d.MAC):
			c.Device = d
		}
	}
	c.AddAddrs, c.DelAddrs = diffBy(current.Addrs, desired.Addrs, func(p netip.Prefix) netip.Prefix { return p }, eq)
	c.SetNeighs, c.DelNeighs = diffBy(current.Neighs, desired.Neighs, func(n Neigh) neighKey { return neighKey{n.Dev, n.IP} }, eq)
	c.SetFDB, c.DelFDB = diffBy(current.FDB, desired.FDB, func(f FDB) fdbKey { return fdbKey{f.Dev, f.MAC} }, eq)
	c.SetRoutes, c.DelRoutes = diffBy(current.Routes, desired.Routes, func(r Route) netip.Prefix { return r.Dst }, eq)
	return c
}

type neighKey struct {
	dev string
	ip  netip.Addr
}

type fdbKey struct {
	dev, mac string
}

func eq[T comparable](a, b T) bool { return a == b }

// diffBy returns the desired items that are missing or different in current (to set),
// and the current items whose key is not desired at all (to delete). Items whose key is
// desired but whose value differs are replaced in place, never deleted first, so a
// changed route does not blink.
func diffBy[T any, K comparable](current, desired []T, key func(T) K, same func(a, b T) bool) (set, del []T) {
	cur := make(map[K]T, len(current))
	for _, c := range current {
		cur[key(c)] = c
	}
	want := make(map[K]bool, len(desired))
	for _, d := range desired {
		k := key(d)
		want[k] = true
		if c, ok := cur[k]; !ok || !same(c, d) {
			set = append(set, d)
		}
	}
	for _, c := range current {
		if !want[key(c)] {
			del = append(del, c)
		}
	}
	return set, del
}
