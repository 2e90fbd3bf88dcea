package trace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Source is where a trace starts: a pod or a node this machine can enter.
type Source struct {
	Name  string       `json:"name"`
	Pod   *resolve.Pod `json:"-"`
	Node  resolve.Node `json:"-"`
	Netns string       `json:"-"`
	IP    netip.Addr   `json:"ip"`
}

// Target is where a trace goes.
type Target struct {
	Kind    string                  `json:"kind"` // pod, node, service, nodeport, address, ingress
	Name    string                  `json:"name"`
	Proto   string                  `json:"proto"`
	Addr    netip.AddrPort          `json:"addr"`
	Service *servicemap.ServicePort `json:"-"`
	Pod     *resolve.Pod            `json:"-"`
	Node    *resolve.Node           `json:"-"`
	Ingress *IngressTarget          `json:"ingress,omitempty"`
}

// IngressTarget is the second leg of a trace to an ingress URL.
type IngressTarget struct {
	Host, Path string
	Backend    resolve.Backend
	Service    servicemap.ServicePort
}

// Options change how a reference is read.
type Options struct {
	Namespace string // for pod and Service names without one
	Port      int    // --port: destination port for pods and nodes
	Proto     string // --proto: tcp, udp or icmp ("" = tcp with a port, else icmp)
	Host      string // --host for ingress URLs
}

// ResolveSource reads SRC: a pod (name, ns/name, IP) or a node (name, IP).
func ResolveSource(ctx context.Context, src resolve.Source, ref string, o Options) (Source, error) {
	nodes, err := src.Nodes(ctx)
	if err != nil {
		return Source{}, err
	}
	if n, err := resolve.FindNode(ctx, src, ref); err == nil {
		if !n.Here {
			return Source{}, fmt.Errorf("SRC node %s: this machine cannot enter it (run the trace there)", ref)
		}
		return Source{Name: "node " + n.Name, Node: n, Netns: n.Netns, IP: n.IP}, nil
	}
	p, err := resolve.FindPod(ctx, src, o.Namespace, ref)
	if err != nil {
		return Source{}, fmt.Errorf("SRC %s is neither a node nor a pod: %w", ref, err)
	}
	if p.Netns == "" || !p.IP.IsValid() {
		return Source{}, fmt.Errorf("SRC pod %s has no network namespace or IP on this machine (node %q)", p.Key(), p.Node)
	}
	var node resolve.Node
	for _, n := range nodes {
		if n.Name == p.Node {
			node = n
		}
	}
	return Source{Name: "pod " + p.Key(), Pod: &p, Node: node, Netns: p.Netns, IP: p.IP}, nil
}

// ResolveTarget reads DST: a pod, pod IP[:port], Service (name, ns/name, name:port,
// ClusterIP[:port]), a node or node IP (with a NodePort: NODE:PORT), or an ingress URL.
func ResolveTarget(ctx context.Context, src resolve.Source, ref string, o Options) (Target, error) {
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		return ingressTarget(ctx, src, ref, o)
	}
	nodes, err := src.Nodes(ctx)
	if err != nil {
		return Target{}, err
	}
	host, portStr, hasPort := cutPort(ref)
	port := o.Port
	if hasPort {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return Target{}, fmt.Errorf("DST %s: port %q is not 1..65535", ref, portStr)
		}
		port = p
	}
	proto := o.Proto
	// A node, by name or address: with a port that is a NodePort, the Service behind it.
	for _, n := range nodes {
		if n.Name == host || n.IP.String() == host {
			nn := n
			t := Target{Kind: "node", Name: "node " + n.Name, Node: &nn, Addr: netip.AddrPortFrom(n.IP, uint16(port))}
			if port > 0 {
				if sp, err := resolve.FindNodePort(ctx, src, port, proto); err == nil {
					t.Kind, t.Service = "nodeport", &sp
					t.Name = fmt.Sprintf("NodePort %d on %s (service %s/%s:%d)", port, n.Name, sp.Namespace, sp.Name, sp.Port)
					proto = strings.ToLower(string(sp.Protocol))
				}
			}
			t.Proto = defaultProto(proto, port)
			return t, nil
		}
	}
	// A Service.
	if sps, err := resolve.FindServicePorts(ctx, src, o.Namespace, ref); err == nil {
		sp := pickPort(sps, proto)
		if len(sp.ClusterIPs) == 0 {
			return Target{}, fmt.Errorf("DST service %s/%s is headless (no cluster IP): trace one of its pods", sp.Namespace, sp.Name)
		}
		return Target{Kind: "service", Name: fmt.Sprintf("service %s/%s:%d", sp.Namespace, sp.Name, sp.Port), Proto: strings.ToLower(string(sp.Protocol)),
			Addr: netip.AddrPortFrom(sp.ClusterIPs[0], sp.Port), Service: &sp}, nil
	} else if !errors.Is(err, resolve.ErrNotFound) && !errors.Is(err, resolve.ErrNeedsStore) {
		return Target{}, err
	}
	// A pod.
	if p, err := resolve.FindPod(ctx, src, o.Namespace, host); err == nil && p.IP.IsValid() {
		pp := p
		return Target{Kind: "pod", Name: "pod " + p.Key(), Pod: &pp, Proto: defaultProto(proto, port), Addr: netip.AddrPortFrom(p.IP, uint16(port))}, nil
	}
	// Any address.
	if a, err := netip.ParseAddr(host); err == nil {
		return Target{Kind: "address", Name: a.String(), Proto: defaultProto(proto, port), Addr: netip.AddrPortFrom(a, uint16(port))}, nil
	}
	return Target{}, fmt.Errorf("DST %s is not a pod, Service, node, address or URL this machine knows", ref)
}

func cutPort(ref string) (string, string, bool) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 {
		return ref, "", false
	}
	return ref[:i], ref[i+1:], true
}

func defaultProto(p string, port int) string {
	switch {
	case p != "":
		return p
	case port > 0:
		return "tcp"
	}
	return "icmp"
}

func pickPort(sps []servicemap.ServicePort, proto string) servicemap.ServicePort {
	for _, sp := range sps {
		if proto == "" && sp.Protocol == "TCP" || strings.EqualFold(proto, string(sp.Protocol)) {
			return sp
		}
	}
	return sps[0]
}

// ingressTarget reads an ingress URL: the first leg goes to the URL's address, the
// second from there to the backend the Ingress rules pick for Host and path.
func ingressTarget(ctx context.Context, src resolve.Source, ref string, o Options) (Target, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return Target{}, fmt.Errorf("DST %s: %w", ref, err)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return Target{}, fmt.Errorf("DST %s: port %q", ref, p)
		}
	}
	addr, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		// A name: find the node it is (ingress runs on node addresses).
		n, nerr := resolve.FindNode(ctx, src, u.Hostname())
		if nerr != nil {
			return Target{}, fmt.Errorf("DST %s: give the ingress address as an IP or node name in the URL and the Host with --host", ref)
		}
		addr = n.IP
	}
	host := o.Host
	if host == "" {
		host = u.Hostname()
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	b, err := src.IngressBackend(ctx, host, path)
	if err != nil {
		return Target{}, fmt.Errorf("DST %s (Host %s): %w", ref, host, err)
	}
	sps, err := resolve.FindServicePorts(ctx, src, b.Namespace, b.Service)
	if err != nil {
		return Target{}, fmt.Errorf("ingress backend %s/%s: %w", b.Namespace, b.Service, err)
	}
	sp := sps[0]
	for _, c := range sps {
		if c.PortName == b.Port || strconv.Itoa(int(c.Port)) == b.Port {
			sp = c
		}
	}
	t := Target{Kind: "ingress", Name: fmt.Sprintf("ingress %s (Host %s, path %s)", ref, host, path), Proto: "tcp",
		Addr: netip.AddrPortFrom(addr, uint16(port)), Ingress: &IngressTarget{Host: host, Path: path, Backend: b, Service: sp}}
	if n, err := resolve.FindNode(ctx, src, addr.String()); err == nil {
		t.Node = &n
	}
	return t, nil
}
