package podnet

import "net/netip"

// KeepBGP returns desired plus every BGP route of current that desired lacks, with the
// neighbour and FDB entries such routes use: what a restarting bgp-mode node programs
// until its speaker has heard every peer's End-of-RIB, so a restart never removes a
// route its peers are about to announce again (RFC 4724's forwarding state kept).
func KeepBGP(current, desired State) State {
	out := desired
	out.Routes = append([]Route(nil), desired.Routes...)
	out.Neighs = append([]Neigh(nil), desired.Neighs...)
	out.FDB = append([]FDB(nil), desired.FDB...)
	have := map[netip.Prefix]bool{}
	for _, r := range desired.Routes {
		have[r.Dst] = true
	}
	gws := map[netip.Addr]bool{}
	for _, r := range current.Routes {
		if r.BGP && !have[r.Dst] {
			out.Routes = append(out.Routes, r)
			have[r.Dst] = true
			if r.OnLink {
				gws[r.Gw] = true
			}
		}
	}
	neighs := map[neighKey]bool{}
	for _, n := range desired.Neighs {
		neighs[neighKey{n.Dev, n.IP}] = true
	}
	macs := map[fdbKey]bool{}
	for _, f := range desired.FDB {
		macs[fdbKey{f.Dev, f.MAC}] = true
	}
	kept := map[string]bool{}
	for _, n := range current.Neighs {
		if gws[n.IP] && !neighs[neighKey{n.Dev, n.IP}] {
			out.Neighs = append(out.Neighs, n)
			kept[n.MAC] = true
		}
	}
	for _, f := range current.FDB {
		if kept[f.MAC] && !macs[fdbKey{f.Dev, f.MAC}] {
			out.FDB = append(out.FDB, f)
		}
	}
	return out
}
