package trace

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/nfnl"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/proxy/nftproxy"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Step is one hop of the expected path, read from kernel state.
type Step struct {
	Place   string `json:"place"`
	What    string `json:"what"`
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// world is what the path walker knows about the cluster.
type world struct {
	nodes []resolve.Node
	pods  []resolve.Pod
}

func (w world) node(name string) (resolve.Node, bool) {
	for _, n := range w.nodes {
		if n.Name == name {
			return n, true
		}
	}
	return resolve.Node{}, false
}

func (w world) nodeByIP(a netip.Addr) (resolve.Node, bool) {
	for _, n := range w.nodes {
		if n.IP == a {
			return n, true
		}
	}
	return resolve.Node{}, false
}

func (w world) podByVeth(node, dev string) (resolve.Pod, bool) {
	for _, p := range w.pods {
		if p.Node == node && p.HostVeth == dev && dev != "" {
			return p, true
		}
	}
	return resolve.Pod{}, false
}

func (w world) podByIP(a netip.Addr) (resolve.Pod, bool) {
	for _, p := range w.pods {
		if p.IP == a {
			return p, true
		}
	}
	return resolve.Pod{}, false
}

func podPlace(p resolve.Pod) string { return "pod " + p.Key() }

// serviceState is what a node's service proxy table says about one service port.
type serviceState struct {
	Found     bool
	NoEPs     bool   // in no-endpoint-services: rejected
	Chain     string // the service chain dispatching it
	Endpoints []netip.AddrPort
	Dispatch  string // how the chain picks ("numgen inc", "numgen random", "jhash")
}

// readService looks a (cluster IP or NodePort) key up in a node's fjord table.
func readService(ns string, key netip.AddrPort, proto string, nodePort bool) (serviceState, error) {
	var st serviceState
	err := inns.Do(ns, func() error {
		c, err := nfnl.Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		lookup := func(m string) (nfnl.Verdict, bool, error) {
			var v nfnl.Verdict
			found := false
			err := c.Elements(unix.NFPROTO_IPV4, nftproxy.TableName, m, func(e nfnl.Element) {
				if nodePort {
					if p, pr, ok := nftproxy.NodePortKey(e.Key); ok && p == key.Port() && pr == proto {
						v, found = e.Verdict, true
					}
					return
				}
				if ap, pr, ok := nftproxy.ServiceIPsKey(e.Key); ok && ap == key && pr == proto {
					v, found = e.Verdict, true
				}
			})
			return v, found, err
		}
		mapName := nftproxy.ServiceIPsMapName
		if nodePort {
			mapName = nftproxy.ServiceNodePortsMapName
		}
		v, ok, err := lookup(mapName)
		if err != nil {
			return err
		}
		if ok {
			st.Found, st.Chain = true, v.Chain
		} else if !nodePort {
			if _, ok, err := lookup(nftproxy.NoEndpointServicesMapName); err == nil && ok {
				st.Found, st.NoEPs = true, true
			}
		}
		return nil
	})
	if err != nil || st.Chain == "" {
		return st, err
	}
	listing, err := inns.NFTList(ns, "list", "chain", "ip", nftproxy.TableName, st.Chain)
	if err != nil {
		return st, err
	}
	// External (NodePort) and local-policy chains jump to the cluster chain: read it too.
	listings := []string{listing}
	for _, f := range strings.Fields(listing) {
		if strings.HasPrefix(f, "svc-") && f != st.Chain {
			if l2, err := inns.NFTList(ns, "list", "chain", "ip", nftproxy.TableName, f); err == nil {
				listings = append(listings, l2)
			}
			break
		}
	}
	for _, l := range listings {
		for _, line := range strings.Split(l, "\n") {
			for _, w := range []string{"numgen inc", "numgen random", "jhash"} {
				if strings.Contains(line, w) && st.Dispatch == "" {
					st.Dispatch = w
				}
			}
			for _, f := range strings.Fields(line) {
				if ep, ok := nftproxy.EndpointOfChain(f); ok && !containsAP(st.Endpoints, ep) {
					st.Endpoints = append(st.Endpoints, ep)
				}
			}
		}
	}
	return st, nil
}

func containsAP(s []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// dispatchName names what a dispatch rule means.
func dispatchName(d string, n int) string {
	switch {
	case n == 1:
		return "one endpoint"
	case d == "numgen inc":
		return "round robin (rr, wrr, or lc/wlc without the userspace proxy)"
	case d == "numgen random":
		return "random"
	case d == "jhash":
		return "source hashing (sh or maglev)"
	}
	return "unknown dispatch"
}

// serviceStep explains a node's service dispatch and picks the endpoint to follow.
func serviceStep(place, ns string, sp servicemap.ServicePort, key netip.AddrPort, nodePort bool, prefer netip.AddrPort) (Step, netip.AddrPort, bool) {
	name := fmt.Sprintf("%s/%s:%d/%s", sp.Namespace, sp.Name, sp.Port, strings.ToLower(string(sp.Protocol)))
	st, err := readService(ns, key, strings.ToLower(string(sp.Protocol)), nodePort)
	s := Step{Place: place}
	switch {
	case err != nil:
		s.What = "service " + name + ": fjord's table could not be read"
		s.Problem, s.Fix = err.Error(), "is the agent's service proxy running here? (fjord doctor --node)"
		return s, netip.AddrPort{}, false
	case !st.Found:
		s.What = fmt.Sprintf("service %s (%v): not in fjord's table", name, key)
		s.Problem = "the service proxy here has not programmed this Service"
		s.Fix = "fjord doctor --node " + place + " (proxy lag)"
		return s, netip.AddrPort{}, false
	case st.NoEPs:
		s.What = fmt.Sprintf("service %s (%v)", name, key)
		s.Problem = "the Service has no endpoints: fjord's proxy rejects new connections at once"
		s.Fix = "make its selector match Ready pods (fjord get endpointslices -n " + sp.Namespace + ")"
		return s, netip.AddrPort{}, false
	}
	var eps []string
	for _, e := range st.Endpoints {
		eps = append(eps, e.String())
	}
	s.What = fmt.Sprintf("service %s (%v) → %d endpoint(s), %s: %s", name, key, len(st.Endpoints), dispatchName(st.Dispatch, len(st.Endpoints)), strings.Join(eps, ", "))
	// Compare with what the store says.
	var want []netip.AddrPort
	for _, e := range sp.Endpoints {
		want = append(want, e.AddrPort())
	}
	var missing, extra []string
	for _, w := range want {
		if !containsAP(st.Endpoints, w) {
			missing = append(missing, w.String())
		}
	}
	for _, g := range st.Endpoints {
		if !containsAP(want, g) {
			extra = append(extra, g.String())
		}
	}
	if len(sp.Endpoints) > 0 && (len(missing) > 0 || len(extra) > 0) {
		s.Problem = fmt.Sprintf("the kernel's endpoints differ from the store's (missing %v, stale %v): the proxy here lags", missing, extra)
		s.Fix = "it catches up on its next sync; if not, fjord doctor --node " + place
	}
	if len(st.Endpoints) == 0 {
		return s, netip.AddrPort{}, false
	}
	pick := st.Endpoints[0]
	if containsAP(st.Endpoints, prefer) {
		pick = prefer
	}
	return s, pick, true
}

// routeStep follows a packet for dst through node n, entering by iif ("" = sent by
// the node itself). It returns the step and where the packet goes next: a pod, another
// node (entering by nextIif), or the node itself.
type hopNext struct {
	pod     *resolve.Pod
	node    *resolve.Node
	nextIif string
	local   bool
	frame   int // size of the biggest underlay frame sent to node (VXLAN: device MTU + overhead)
}

func routeStep(w world, n resolve.Node, iif string, src, dst netip.Addr) (Step, hopNext) {
	s := Step{Place: n.Name}
	var next hopNext
	err := inns.Do(n.Netns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		opts := &netlink.RouteGetOptions{}
		if iif != "" {
			opts.Iif, opts.SrcAddr = iif, src.AsSlice()
		}
		routes, err := h.RouteGetWithOptions(dst.AsSlice(), opts)
		if err != nil || len(routes) == 0 {
			s.What = fmt.Sprintf("route to %v", dst)
			s.Problem = fmt.Sprintf("no route to %v here (%v)", dst, err)
			s.Fix = "fjord doctor --node " + n.Name + " (the agent's routes)"
			if fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); iif != "" && strings.TrimSpace(string(fwd)) != "1" {
				s.Problem, s.Fix = "forwarding is off: net.ipv4.ip_forward = 0", "sysctl -w net.ipv4.ip_forward=1 in "+n.Name
			}
			return nil
		}
		r := routes[0]
		if r.Type == unix.RTN_LOCAL {
			s.What = fmt.Sprintf("%v is this node's own address", dst)
			next.local = true
			return nil
		}
		l, err := h.LinkByIndex(r.LinkIndex)
		if err != nil {
			return err
		}
		dev := l.Attrs().Name
		up := l.Attrs().OperState != netlink.OperDown && l.Attrs().Flags&net.FlagUp != 0
		via := ""
		if r.Gw != nil {
			via = " via " + r.Gw.String()
		}
		in := ""
		if iif != "" {
			in = "in " + iif + ", "
		}
		s.What = fmt.Sprintf("%sroute %v%s dev %s (MTU %d)", in, dst, via, dev, l.Attrs().MTU)
		if !up {
			s.Problem, s.Fix = dev+" is down", "ip link set "+dev+" up (in "+n.Name+")"
			return nil
		}
		if p, ok := w.podByVeth(n.Name, dev); ok {
			next.pod = &p
			return nil
		}
		if vx, ok := l.(*netlink.Vxlan); ok && r.Gw != nil {
			neighs, _ := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
			mac := ""
			for _, ne := range neighs {
				if ne.IP.Equal(r.Gw) {
					mac = ne.HardwareAddr.String()
				}
			}
			if mac == "" {
				s.Problem = fmt.Sprintf("no neighbour entry for %v on %s: the kernel would have to ARP across VXLAN, which fjord does not answer", r.Gw, dev)
				s.Fix = "the agent adds it with the route; fjord doctor --node " + n.Name
				return nil
			}
			fdb, _ := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
			var remote netip.Addr
			for _, fe := range fdb {
				if fe.HardwareAddr.String() == mac && fe.IP != nil {
					remote, _ = netip.AddrFromSlice(fe.IP)
					remote = remote.Unmap()
				}
			}
			if !remote.IsValid() {
				s.Problem = fmt.Sprintf("no FDB entry for %s on %s: the kernel does not know which node has that VTEP", mac, dev)
				s.Fix = "the agent adds it with the route; fjord doctor --node " + n.Name
				return nil
			}
			peer, ok := w.nodeByIP(remote)
			name := remote.String()
			if ok {
				name = peer.Name + " " + name
			}
			s.What += fmt.Sprintf("; neighbour %v → %s; FDB %s → %s (VXLAN VNI %d, UDP %d)", r.Gw, mac, mac, name, vx.VxlanId, vx.Port)
			if ul, err := h.RouteGet(remote.AsSlice()); err == nil && len(ul) > 0 {
				if ull, err := h.LinkByIndex(ul[0].LinkIndex); err == nil {
					s.What += fmt.Sprintf(" over %s (MTU %d)", ull.Attrs().Name, ull.Attrs().MTU)
					if ull.Attrs().MTU < l.Attrs().MTU+podnet.VXLANOverhead {
						s.Problem = fmt.Sprintf("%s's MTU %d cannot carry %s's %d plus %d bytes of VXLAN", ull.Attrs().Name, ull.Attrs().MTU, dev, l.Attrs().MTU, podnet.VXLANOverhead)
						s.Fix = "fjord mtu"
					}
				}
			}
			if ok {
				next.node, next.nextIif = &peer, dev
				next.frame = l.Attrs().MTU + podnet.VXLANOverhead
			}
			return nil
		}
		// Plain routing: the next hop (or the destination) is another node.
		hopAddr := dst
		if r.Gw != nil {
			hopAddr, _ = netip.AddrFromSlice(r.Gw)
			hopAddr = hopAddr.Unmap()
		}
		if peer, ok := w.nodeByIP(hopAddr); ok && peer.Name != n.Name {
			next.node, next.nextIif = &peer, "eth0"
			if u := underlayName(peer); u != "" {
				next.nextIif = u
			}
		} else if peer, ok := w.nodeByIP(dst); ok && peer.Name != n.Name {
			next.node, next.nextIif = &peer, underlayName(peer)
		}
		return nil
	})
	if err != nil {
		s.Problem = err.Error()
	}
	return s, next
}

// underlayName is the interface holding a node's address.
func underlayName(n resolve.Node) string {
	name, _ := underlayOf(n)
	return name
}

// underlayOf is the interface holding a node's address and its MTU.
func underlayOf(n resolve.Node) (string, int) {
	name, mtu := "", 0
	_ = inns.Do(n.Netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == n.IP {
					name, mtu = l.Attrs().Name, l.Attrs().MTU
				}
			}
		}
		return nil
	})
	return name, mtu
}

// podStep checks the pod end: the address, and a listener on the port.
func podStep(p resolve.Pod, proto string, port uint16) Step {
	s := Step{Place: podPlace(p), What: fmt.Sprintf("eth0 %v", p.IP)}
	if proto == "icmp" || port == 0 {
		return s
	}
	listening, err := listens(p.Netns, proto, port)
	switch {
	case err != nil:
		s.What += fmt.Sprintf("; listeners unknown (%v)", err)
	case listening:
		s.What += fmt.Sprintf("; %s %d listening", strings.ToUpper(proto), port)
	default:
		s.Problem = fmt.Sprintf("nothing listens on %s %d in this pod: connections are refused", strings.ToUpper(proto), port)
		s.Fix = "start the server on that port, or fix the Service's targetPort (fjord exec " + p.Key() + " -- ss -ltnu)"
	}
	return s
}

// listens reads /proc/thread-self/net/{tcp,udp} inside the namespace (thread-self:
// the namespace is the pinned thread's, not the process's).
func listens(ns, proto string, port uint16) (bool, error) {
	found := false
	err := inns.Do(ns, func() error {
		for _, file := range []string{proto, proto + "6"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + file)
			if err != nil {
				continue
			}
			if listenerOn(string(b), proto, port) {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// listenerOn scans /proc/net/tcp or udp text for a socket bound to port (TCP: in
// LISTEN state, 0A).
func listenerOn(text, proto string, port uint16) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(text, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[1], want) {
			continue
		}
		if proto == "udp" || f[3] == "0A" {
			return true
		}
	}
	return false
}

// expectedPath walks the path the kernel state gives the flow, from the source to the
// destination, stopping at the first problem. prefer is the endpoint the live probe's
// DNAT chose (followed when it is one of the Service's).
func expectedPath(w world, req Request, prefer netip.AddrPort) []Step {
	t := req.Target
	var steps []Step
	dst, port := t.Addr.Addr(), t.Addr.Port()
	cur := req.Source.Node
	iif := ""
	if p := req.Source.Pod; p != nil {
		s := sourcePodStep(*p, dst)
		steps = append(steps, s)
		if s.Problem != "" {
			return steps
		}
		iif = p.HostVeth
	}
	if cur.Name == "" {
		return append(steps, Step{Place: req.Source.Name, What: "its node is unknown", Problem: "the source's node is not known here"})
	}
	if t.Kind == "service" {
		s, ep, ok := serviceStep(cur.Name, cur.Netns, *t.Service, t.Addr, false, prefer)
		steps = append(steps, s)
		if !ok {
			return steps
		}
		dst, port = ep.Addr(), ep.Port()
	}
	for hop := 0; hop < 8; hop++ {
		if t.Kind == "nodeport" && t.Node != nil && cur.Name == t.Node.Name && dst == t.Node.IP {
			s, ep, ok := serviceStep(cur.Name, cur.Netns, *t.Service, t.Addr, true, prefer)
			steps = append(steps, s)
			if !ok {
				return steps
			}
			dst, port = ep.Addr(), ep.Port()
		}
		s, next := routeStep(w, cur, iif, req.Source.IP, dst)
		steps = append(steps, s)
		switch {
		case s.Problem != "":
			return steps
		case next.local:
			if t.Proto != "icmp" && port > 0 {
				ls := Step{Place: cur.Name, What: fmt.Sprintf("%s %d on the node", strings.ToUpper(t.Proto), port)}
				if ok, err := listens(cur.Netns, t.Proto, port); err == nil && !ok {
					ls.Problem = fmt.Sprintf("nothing listens on %s %d in %s", strings.ToUpper(t.Proto), port, cur.Name)
					ls.Fix = "start the server (the ingress listens on the node's address :80/:443)"
				} else if err == nil {
					ls.What += " listening"
				}
				steps = append(steps, ls)
			}
			return steps
		case next.pod != nil:
			return append(steps, podStep(*next.pod, t.Proto, port))
		case next.node != nil:
			if next.frame > 0 {
				if name, mtu := underlayOf(*next.node); mtu > 0 && mtu < next.frame {
					steps = append(steps, Step{Place: next.node.Name, What: fmt.Sprintf("underlay %s MTU %d", name, mtu),
						Problem: fmt.Sprintf("%s sends VXLAN frames of up to %d bytes, but %s's %s takes only %d: full-size pod packets vanish on the way (an MTU black hole)", cur.Name, next.frame, next.node.Name, name, mtu),
						Fix:     "fjord mtu: lower the pod MTU everywhere, or raise " + next.node.Name + "'s underlay MTU"})
					return steps
				}
			}
			cur, iif = *next.node, next.nextIif
		default:
			return append(steps, Step{Place: cur.Name, What: fmt.Sprintf("leaves toward %v, outside what this machine can enter", dst)})
		}
	}
	return steps
}

// sourcePodStep is the first hop: the pod's own route.
func sourcePodStep(p resolve.Pod, dst netip.Addr) Step {
	s := Step{Place: podPlace(p)}
	err := inns.Do(p.Netns, func() error {
		routes, err := netlink.RouteGet(dst.AsSlice())
		if err != nil || len(routes) == 0 {
			s.Problem = fmt.Sprintf("no route to %v in the pod (%v)", dst, err)
			s.Fix = "the CNI plugin gives every pod a default route via its gateway: re-create the pod"
			return nil
		}
		l, err := netlink.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			return err
		}
		via := ""
		if routes[0].Gw != nil {
			via = " via " + routes[0].Gw.String()
		}
		s.What = fmt.Sprintf("route %v%s dev %s (MTU %d)", dst, via, l.Attrs().Name, l.Attrs().MTU)
		if l.Attrs().OperState == netlink.OperDown {
			s.Problem = l.Attrs().Name + " is down (its host side was deleted?)"
			s.Fix = "re-create the pod"
		}
		return nil
	})
	if err != nil {
		s.Problem = err.Error()
	}
	return s
}
