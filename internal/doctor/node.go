package doctor

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/nfnl"
	"github.com/fjord-net/fjord/internal/nftext"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/proxy/nftproxy"
	"github.com/fjord-net/fjord/internal/resolve"
)

// LinkFact is one interface as doctor sees it.
type LinkFact struct {
	Name     string
	MTU      int
	Up       bool
	Features map[string]bool // ethtool features that are on (nil unknown)
}

// NodeFacts is what doctor reads in one node's network namespace.
type NodeFacts struct {
	Node        resolve.Node
	Sysctls     map[string]string // absent keys: the sysctl does not exist here
	Underlay    *LinkFact         // the interface holding the node's address
	VXLAN       *LinkFact         // fjord's vxlan device (nil in routed mode or missing)
	NodeJSON    *nodestate.NodeNetwork
	NodeJSONErr string
	HostVeths   []LinkFact // host sides of the node's pods' veths
	Bridges     int        // bridge devices in the node (bridge-nf-call-* only matters with one)
	Tables      []string   // "family name"
	Foreign     []nftext.Chain
	HasProxy    bool              // table ip fjord exists
	ServiceKeys map[string]string // "10.96.0.2:80/tcp" -> map it is in (service-ips or no-endpoint-services)
	State       *podnet.State     // fjord's routes, neighbours and FDB entries
	Self        podnet.Self       // this node as the planner sees it (from the kernel)
	Conntrack   []CTFlow
	Errors      []string // what could not be read
}

// CTFlow is a conntrack entry for traffic to a service: the address the client used and
// the endpoint the DNAT chose.
type CTFlow struct {
	Proto    string
	Service  netip.AddrPort // original destination
	Endpoint netip.AddrPort // reply source
}

// nodeSysctls are read in every node (and rp_filter of its underlay and vxlan devices).
var nodeSysctls = []string{
	"net.ipv4.ip_forward",
	"net.ipv4.conf.all.rp_filter",
	"net.ipv4.conf.default.rp_filter",
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
	"net.netfilter.nf_conntrack_count",
	"net.netfilter.nf_conntrack_max",
}

// gatherNode reads a node's facts inside its namespace.
func gatherNode(n resolve.Node, pods []resolve.Pod) NodeFacts {
	f := NodeFacts{Node: n, Sysctls: map[string]string{}}
	fail := func(what string, err error) { f.Errors = append(f.Errors, what+": "+err.Error()) }
	if n.RunDir != "" {
		if nn, err := nodestate.Read(n.RunDir); err != nil {
			f.NodeJSONErr = err.Error()
		} else {
			f.NodeJSON = &nn
		}
	}
	hostVeths := map[string]bool{}
	for _, p := range pods {
		if p.Node == n.Name && p.HostVeth != "" {
			hostVeths[p.HostVeth] = true
		}
	}
	err := inns.Do(n.Netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		var devs []string
		for _, l := range links {
			a := l.Attrs()
			lf := LinkFact{Name: a.Name, MTU: a.MTU, Up: a.Flags&unix.IFF_UP != 0 && a.OperState != netlink.OperDown}
			switch {
			case l.Type() == "vxlan" && strings.HasPrefix(a.Name, "fjord."):
				f.VXLAN = &lf
				devs = append(devs, a.Name)
			case l.Type() == "bridge":
				f.Bridges++
			case hostVeths[a.Name]:
				f.HostVeths = append(f.HostVeths, lf)
			}
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
			for _, ad := range addrs {
				if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip.Unmap() == n.IP && f.Underlay == nil {
					u := lf
					f.Underlay = &u
					devs = append(devs, a.Name)
				}
			}
		}
		if e, err := ethtool.NewEthtool(); err == nil {
			for _, lf := range []*LinkFact{f.Underlay, f.VXLAN} {
				if lf != nil {
					if feats, err := e.Features(lf.Name); err == nil {
						lf.Features = feats
					}
				}
			}
			e.Close()
		}
		paths := map[string]string{}
		for _, s := range nodeSysctls {
			paths[s] = "/proc/sys/" + strings.ReplaceAll(s, ".", "/")
		}
		for _, d := range devs { // device names may hold dots ("fjord.1")
			paths["net.ipv4.conf."+d+".rp_filter"] = "/proc/sys/net/ipv4/conf/" + d + "/rp_filter"
		}
		for s, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Sysctls[s] = strings.TrimSpace(string(b))
			}
		}
		f.readNFT(fail)
		f.readPodNetwork(fail)
		f.readConntrack(fail)
		return nil
	})
	if err != nil {
		fail("namespace "+n.Netns, err)
	}
	sort.Slice(f.HostVeths, func(i, j int) bool { return f.HostVeths[i].Name < f.HostVeths[j].Name })
	return f
}

// readNFT lists the tables, reads foreign ones as nft prints them, and the service
// proxy's dispatch maps over netlink. It runs inside the node's namespace.
func (f *NodeFacts) readNFT(fail func(string, error)) {
	out, err := inns.NFTList("", "list", "tables")
	if err != nil {
		fail("nft list tables", err)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[0] != "table" {
			continue
		}
		t := fields[1] + " " + fields[2]
		f.Tables = append(f.Tables, t)
		if t == "ip fjord" {
			f.HasProxy = true
			continue
		}
		listing, err := inns.NFTList("", "-a", "list", "table", fields[1], fields[2])
		if err != nil {
			fail("nft list table "+t, err)
			continue
		}
		f.Foreign = append(f.Foreign, nftext.Parse(listing)...)
	}
	if !f.HasProxy {
		return
	}
	c, err := nfnl.Dial()
	if err != nil {
		fail("nf_tables netlink", err)
		return
	}
	defer c.Close()
	f.ServiceKeys = map[string]string{}
	for _, m := range []string{nftproxy.ServiceIPsMapName, nftproxy.NoEndpointServicesMapName} {
		err := c.Elements(unix.NFPROTO_IPV4, "fjord", m, func(e nfnl.Element) {
			if ap, proto, ok := nftproxy.ServiceIPsKey(e.Key); ok {
				f.ServiceKeys[fmt.Sprintf("%v/%s", ap, proto)] = m
			}
		})
		if err != nil {
			fail("elements of "+m, err)
		}
	}
}

// readPodNetwork reads fjord's pod-network state and what the planner needs to know
// about this node.
func (f *NodeFacts) readPodNetwork(fail func(string, error)) {
	h, err := netlink.NewHandle()
	if err != nil {
		fail("netlink", err)
		return
	}
	defer h.Close()
	k := kernel.New(h)
	dev := ""
	if f.VXLAN != nil {
		dev = f.VXLAN.Name
	}
	st, err := k.Observe(dev)
	if err != nil {
		fail("pod network state", err)
		return
	}
	f.State = &st
	mode := podnet.ModeRouted
	if dev != "" {
		mode = podnet.ModeVXLAN
	}
	f.Self = podnet.Self{Name: f.Node.Name, Mode: mode, NodeIP: f.Node.IP, PodCIDR: f.Node.PodCIDR}
	if st.Device != nil {
		f.Self.Device = *st.Device
	}
	if u, err := k.FindUnderlay("", f.Node.IP); err == nil {
		f.Self.Underlay, f.Self.OnLink = u.Name, u.OnLink
	}
}

func (f *NodeFacts) readConntrack(fail func(string, error)) {
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		fail("conntrack", err)
		return
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	if err != nil {
		fail("conntrack", err)
		return
	}
	for _, fl := range flows {
		orig, ok1 := netip.AddrFromSlice(fl.Forward.DstIP)
		ep, ok2 := netip.AddrFromSlice(fl.Reverse.SrcIP)
		if !ok1 || !ok2 || orig.Unmap() == ep.Unmap() {
			continue // not DNATed
		}
		proto := map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}[fl.Forward.Protocol]
		if proto == "" {
			continue
		}
		f.Conntrack = append(f.Conntrack, CTFlow{Proto: proto,
			Service:  netip.AddrPortFrom(orig.Unmap(), fl.Forward.DstPort),
			Endpoint: netip.AddrPortFrom(ep.Unmap(), fl.Reverse.SrcPort)})
	}
}
