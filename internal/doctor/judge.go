package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Cluster is what the node checks compare against (from the store when it answers).
type Cluster struct {
	Nodes    []resolve.Node
	Services []servicemap.ServicePort
	StoreUp  bool
}

func (cl Cluster) node(name string) (resolve.Node, bool) {
	for _, n := range cl.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return resolve.Node{}, false
}

// judgeSysctls checks forwarding, reverse-path filtering, bridge netfilter and the
// conntrack table's fill.
func judgeSysctls(c *checks, f NodeFacts) {
	if v := f.Sysctls["net.ipv4.ip_forward"]; v != "1" {
		c.add("sysctl", Fail, fmt.Sprintf("net.ipv4.ip_forward = %q: the node does not route pod traffic", v),
			"sysctl -w net.ipv4.ip_forward=1 in the node (the agent sets it when it starts: restart it)")
	} else {
		c.pass("sysctl", "net.ipv4.ip_forward = 1")
	}
	all := atoi(f.Sysctls["net.ipv4.conf.all.rp_filter"])
	var strict, vals []string
	for _, lf := range []*LinkFact{f.Underlay, f.VXLAN} {
		if lf == nil {
			continue
		}
		eff := max(all, atoi(f.Sysctls["net.ipv4.conf."+lf.Name+".rp_filter"]))
		vals = append(vals, fmt.Sprintf("%s %d", lf.Name, eff))
		if eff == 1 {
			strict = append(strict, lf.Name)
		}
	}
	if len(strict) > 0 {
		c.add("sysctl", Warn, fmt.Sprintf("strict reverse-path filtering (rp_filter 1) on %s: packets are dropped whenever the route back differs from the way in (a second uplink, asymmetric routes)", strings.Join(strict, ", ")),
			"net.ipv4.conf.all.rp_filter=2 (loose) in the node, if traffic may arrive asymmetrically; fjord's own paths are symmetric")
	} else {
		c.pass("sysctl", "rp_filter (effective): %s", strings.Join(vals, ", "))
	}
	if v, ok := f.Sysctls["net.bridge.bridge-nf-call-iptables"]; !ok {
		c.pass("sysctl", "br_netfilter not loaded: not needed (fjord wires pods with routed veths, no bridge)")
	} else if f.Bridges == 0 {
		c.pass("sysctl", "bridge-nf-call-iptables = %s: no bridge in this node, so it does not matter", v)
	} else if v != "1" {
		c.add("sysctl", Warn, fmt.Sprintf("bridge-nf-call-iptables = %s with %d bridge(s) here: bridged traffic bypasses netfilter (service DNAT, firewalls)", v, f.Bridges),
			"sysctl -w net.bridge.bridge-nf-call-iptables=1 if pods sit on a bridge")
	} else {
		c.pass("sysctl", "bridge-nf-call-iptables = 1")
	}
	count, cerr := strconv.Atoi(f.Sysctls["net.netfilter.nf_conntrack_count"])
	mx, merr := strconv.Atoi(f.Sysctls["net.netfilter.nf_conntrack_max"])
	switch {
	case cerr != nil || merr != nil || mx == 0:
		c.add("conntrack", Warn, "conntrack table size unknown (net.netfilter.nf_conntrack_count/max unreadable)", "")
	case count*100 >= mx*90:
		c.add("conntrack", Fail, fmt.Sprintf("conntrack table %d of %d entries (%d%%): new connections are dropped when it is full (\"nf_conntrack: table full\")", count, mx, count*100/mx),
			"raise net.netfilter.nf_conntrack_max, or find what opens so many flows (conntrack -L | sort | uniq -c)")
	case count*100 >= mx*75:
		c.add("conntrack", Warn, fmt.Sprintf("conntrack table %d of %d entries (%d%%)", count, mx, count*100/mx), "raise net.netfilter.nf_conntrack_max before it fills")
	default:
		c.pass("conntrack", "conntrack table %d of %d entries", count, mx)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// judgeMTU checks that the pod MTU fits the vxlan device and the device the underlay.
func judgeMTU(c *checks, f NodeFacts) {
	if f.Underlay == nil {
		c.add("mtu", Fail, fmt.Sprintf("no interface in the node holds its address %v", f.Node.IP), "check the node's address and the agent's --iface/--node-ip")
		return
	}
	if !f.Underlay.Up {
		c.add("link", Fail, fmt.Sprintf("underlay interface %s is down", f.Underlay.Name), "ip link set "+f.Underlay.Name+" up")
	}
	overhead := 0
	if f.Node.Mode == string(podnet.ModeVXLAN) || f.VXLAN != nil {
		overhead = podnet.VXLANOverhead
		if f.Node.IP.Is6() {
			overhead = podnet.VXLANOverheadIPv6
		}
		switch {
		case f.VXLAN == nil:
			c.add("mtu", Fail, "vxlan mode but fjord's vxlan device is missing", "start (or restart) the agent: it creates the device")
			return
		case !f.VXLAN.Up:
			c.add("link", Fail, fmt.Sprintf("vxlan device %s is down", f.VXLAN.Name), "ip link set "+f.VXLAN.Name+" up (or restart the agent)")
		}
		if f.VXLAN.MTU+overhead > f.Underlay.MTU {
			c.add("mtu", Fail, fmt.Sprintf("%s MTU %d does not fit %s's %d minus %d bytes of VXLAN: full-size pod packets become %d-byte frames the underlay cannot carry",
				f.VXLAN.Name, f.VXLAN.MTU, f.Underlay.Name, f.Underlay.MTU, overhead, f.VXLAN.MTU+overhead),
				fmt.Sprintf("pods here need MTU ≤ %d: restart the agent (it derives the MTU from the underlay) and re-create the pods, or raise %s's MTU to %d", f.Underlay.MTU-overhead, f.Underlay.Name, f.VXLAN.MTU+overhead))
			return
		}
	}
	pod := 0
	if f.NodeJSON != nil {
		pod = f.NodeJSON.MTU
	}
	limit := f.Underlay.MTU - overhead
	if f.VXLAN != nil {
		limit = f.VXLAN.MTU
	}
	if pod > limit {
		c.add("mtu", Fail, fmt.Sprintf("pods get MTU %d but the path allows %d", pod, limit), fmt.Sprintf("fjord agent --mtu %d (or no --mtu: the agent computes it)", limit))
		return
	}
	var off []string
	for _, v := range f.HostVeths {
		if pod > 0 && v.MTU != pod {
			off = append(off, fmt.Sprintf("%s %d", v.Name, v.MTU))
		}
	}
	if len(off) > 0 {
		c.add("mtu", Warn, fmt.Sprintf("pod veths with an MTU other than the node's pod MTU %d: %s (created before an MTU change?)", pod, join(off, 5)), "re-create those pods")
		return
	}
	dev := ""
	if f.VXLAN != nil {
		dev = fmt.Sprintf(", %s %d", f.VXLAN.Name, f.VXLAN.MTU)
	}
	c.pass("mtu", "underlay %s %d%s, pods %d (%d pod veths agree)", f.Underlay.Name, f.Underlay.MTU, dev, pod, len(f.HostVeths))
}

// judgeOffloads checks the offloads that make VXLAN cheap.
func judgeOffloads(c *checks, f NodeFacts) {
	if f.VXLAN == nil || f.Underlay == nil || f.Underlay.Features == nil || f.VXLAN.Features == nil {
		return
	}
	var missing []string
	if !f.Underlay.Features["tx-udp_tnl-segmentation"] {
		missing = append(missing, f.Underlay.Name+" tx-udp_tnl-segmentation")
	}
	for _, k := range []string{"tx-checksum-ip-generic", "tx-generic-segmentation"} {
		if !f.VXLAN.Features[k] {
			missing = append(missing, f.VXLAN.Name+" "+k)
		}
	}
	if len(missing) > 0 {
		c.add("offload", Warn, "offloads off: "+strings.Join(missing, ", ")+": every VXLAN packet is segmented and checksummed by the CPU, which costs throughput and adds jitter under load",
			"ethtool -K DEV FEATURE on (if the NIC supports it)")
		return
	}
	c.pass("offload", "%s segments VXLAN in hardware (tx-udp_tnl-segmentation); %s checksums and GSO on", f.Underlay.Name, f.VXLAN.Name)
}

// judgeFirewall names foreign nftables rules that drop traffic.
func judgeFirewall(c *checks, f NodeFacts) {
	n := 0
	for _, ch := range f.Foreign {
		where := fmt.Sprintf("table %s %s chain %s", ch.Family, ch.Table, ch.Name)
		if ch.Hook != "" && ch.Policy == "drop" {
			n++
			c.add("firewall", Warn, where+" has policy drop: whatever no rule accepts is dropped", "fjord trace SRC DST shows whether it hits your traffic")
		}
		for _, r := range ch.Rules {
			switch {
			case r.BlocksPMTU():
				n++
				c.add("firewall", Fail, fmt.Sprintf("%s drops the ICMP path-MTU discovery needs: %q (handle %d): big packets through this node vanish instead of shrinking", where, r.Text, r.Handle),
					fmt.Sprintf("nft delete rule %s %s %s handle %d (in the node)", ch.Family, ch.Table, ch.Name, r.Handle))
			case r.Drops():
				n++
				c.add("firewall", Warn, fmt.Sprintf("%s drops traffic: %q (handle %d)", where, r.Text, r.Handle),
					fmt.Sprintf("if it is not meant: nft delete rule %s %s %s handle %d; fjord trace shows whether it hits a path", ch.Family, ch.Table, ch.Name, r.Handle))
			}
		}
	}
	if n == 0 {
		if len(f.Foreign) == 0 {
			c.pass("firewall", "no nftables tables but fjord's")
		} else {
			c.pass("firewall", "foreign nftables chains drop nothing")
		}
	}
}

// judgeAgent compares the node's pod-network kernel state with what the store asks for.
func judgeAgent(c *checks, f NodeFacts, cl Cluster) {
	switch {
	case f.NodeJSON == nil && f.NodeJSONErr != "":
		c.add("agent", Fail, "the agent has not published this node's pod network: "+f.NodeJSONErr, "start the agent; its log says why it is not ready")
	case f.NodeJSON != nil:
		c.pass("agent", "node.json: pod CIDR %v, %s mode, MTU %d", f.NodeJSON.PodCIDR, f.NodeJSON.Mode, f.NodeJSON.MTU)
	}
	if !cl.StoreUp {
		c.add("agent", Warn, "store unreachable: agent liveness and lag not checked", "")
		return
	}
	self, ok := cl.node(f.Node.Name)
	switch {
	case !ok:
		c.add("agent", Fail, "no Node object for this node in the store", "start the agent: it registers the node")
		return
	case !self.Ready:
		c.add("agent", Fail, "the node's lease expired: its agent is not running or cannot reach the store", "restart the agent (lab: fjord lab restart-agent "+f.Node.Name+")")
	default:
		c.pass("agent", "lease alive (node Ready)")
	}
	if f.State == nil {
		return
	}
	var peers []podnet.Peer
	for _, n := range cl.Nodes {
		if n.Name != f.Node.Name {
			peers = append(peers, podnet.Peer{Name: n.Name, NodeIP: n.IP, PodCIDR: n.PodCIDR, VTEPMAC: n.VTEPMAC})
		}
	}
	self2 := f.Self
	self2.PodCIDR = self.PodCIDR
	desired, _ := podnet.Plan(self2, peers)
	ch := podnet.Diff(*f.State, desired)
	var lag []string
	if ch.Device != nil && f.State.Device == nil {
		lag = append(lag, "vxlan device missing")
	}
	lag = describe(lag, "missing address ", ch.AddAddrs)
	lag = describe(lag, "missing or wrong route ", ch.SetRoutes)
	lag = describe(lag, "missing neighbour ", ch.SetNeighs)
	lag = describe(lag, "missing FDB ", ch.SetFDB)
	lag = describe(lag, "stale route ", ch.DelRoutes)
	lag = describe(lag, "stale neighbour ", ch.DelNeighs)
	lag = describe(lag, "stale FDB ", ch.DelFDB)
	if len(lag) > 0 {
		c.add("agent", Fail, "the kernel lags the store: "+join(lag, 4), "the agent repairs this on its next resync; if it stays, read the agent's log (lab: fjord lab restart-agent "+f.Node.Name+")")
		return
	}
	c.pass("agent", "kernel matches the store: %d routes, %d neighbours, %d FDB entries for %d peers", len(f.State.Routes), len(f.State.Neighs), len(f.State.FDB), len(peers))
}

// describe appends prefix+item for every item.
func describe[T fmt.Stringer](out []string, prefix string, items []T) []string {
	for _, it := range items {
		out = append(out, prefix+it.String())
	}
	return out
}

// judgeProxy compares the service proxy's dispatch maps with the store's Services.
func judgeProxy(c *checks, f NodeFacts, cl Cluster) {
	if !f.HasProxy {
		c.add("proxy", Fail, "table ip fjord is missing: the service proxy is not running here (Services do not work from this node)", "restart the agent; its log says why the proxy stopped")
		return
	}
	if !cl.StoreUp {
		c.add("proxy", Warn, "store unreachable: service programming not compared", "")
		return
	}
	want := map[string]string{}
	for _, sp := range cl.Services {
		m := "no-endpoint-services"
		if len(sp.Endpoints) > 0 {
			m = "service-ips"
		}
		for _, ip := range sp.ClusterIPs {
			if ip.Is4() {
				want[fmt.Sprintf("%v:%d/%s", ip, sp.Port, strings.ToLower(string(sp.Protocol)))] = m
			}
		}
	}
	var lag []string
	for k, m := range want {
		switch got, ok := f.ServiceKeys[k]; {
		case !ok:
			lag = append(lag, k+" not programmed")
		case got != m:
			lag = append(lag, fmt.Sprintf("%s is in %s, the store says %s", k, got, m))
		}
	}
	var stale []string
	for k := range f.ServiceKeys {
		if _, ok := want[k]; !ok {
			stale = append(stale, k)
		}
	}
	sort.Strings(lag)
	sort.Strings(stale)
	switch {
	case len(lag) > 0:
		c.add("proxy", Fail, "the service proxy lags the store: "+join(lag, 4), "it catches up on its next sync (syncPeriod); if it stays, read the agent's log")
	case len(stale) > 0:
		c.add("proxy", Warn, "the service proxy still dispatches deleted services: "+join(stale, 4), "it removes them on its next sync; if they stay, read the agent's log")
	default:
		c.pass("proxy", "table ip fjord dispatches all %d service ports as the store says", len(want))
	}
}

// judgeConntrack finds conntrack entries that still send traffic to endpoints a
// service no longer has.
func judgeConntrack(c *checks, f NodeFacts, cl Cluster) {
	if !cl.StoreUp {
		return
	}
	type key struct {
		svc   netip.AddrPort
		proto string
	}
	eps := map[key]map[netip.AddrPort]bool{}
	names := map[key]string{}
	for _, sp := range cl.Services {
		for _, ip := range sp.ClusterIPs {
			k := key{netip.AddrPortFrom(ip, sp.Port), strings.ToLower(string(sp.Protocol))}
			set := map[netip.AddrPort]bool{}
			for _, ep := range sp.Endpoints {
				set[ep.AddrPort()] = true
			}
			eps[k], names[k] = set, fmt.Sprintf("%s/%s:%d/%s", sp.Namespace, sp.Name, sp.Port, k.proto)
		}
	}
	stale := map[string][]string{}
	n := 0
	for _, fl := range f.Conntrack {
		k := key{fl.Service, fl.Proto}
		set, ok := eps[k]
		if !ok || set[fl.Endpoint] {
			continue
		}
		n++
		stale[names[k]] = append(stale[names[k]], fl.Endpoint.String())
	}
	if n == 0 {
		c.pass("conntrack", "no conntrack entry points at a deleted endpoint (%d service flows)", len(f.Conntrack))
		return
	}
	var parts []string
	for svc, list := range stale {
		sort.Strings(list)
		parts = append(parts, fmt.Sprintf("%s → %s", svc, strings.Join(dedupe(list), ", ")))
	}
	sort.Strings(parts)
	c.add("conntrack", Warn, fmt.Sprintf("%d conntrack entries still send traffic to endpoints their service no longer has: %s", n, join(parts, 3)),
		"UDP clients keep using such an entry while they talk (the agent deletes UDP ones when an endpoint goes: a lasting one means its proxy is not syncing); delete: conntrack -D --orig-dst SERVICE-IP --reply-src ENDPOINT-IP (in the node)")
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// judgeServices names Services without endpoints (cluster scope).
func judgeServices(c *checks, cl Cluster) {
	if !cl.StoreUp {
		c.add("services", Warn, "store unreachable: Services not checked", "")
		return
	}
	var empty []string
	for _, sp := range cl.Services {
		if len(sp.ClusterIPs) > 0 && len(sp.Endpoints) == 0 {
			empty = append(empty, fmt.Sprintf("%s/%s:%d/%s", sp.Namespace, sp.Name, sp.Port, strings.ToLower(string(sp.Protocol))))
		}
	}
	if len(empty) > 0 {
		c.add("services", Warn, "Services without endpoints (connections are refused at once): "+join(empty, 6),
			"check that the Service's selector matches the pods' labels and that they are Ready (fjord get endpointslices)")
		return
	}
	c.pass("services", "every Service port has endpoints (%d ports)", len(cl.Services))
}
