package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// FindPod looks a pod up by "name" (in namespace), "namespace/name" or its IP.
func FindPod(ctx context.Context, src Source, namespace, ref string) (Pod, error) {
	pods, err := src.Pods(ctx)
	if err != nil {
		return Pod{}, err
	}
	ns, name := namespace, ref
	if a, b, ok := strings.Cut(ref, "/"); ok {
		ns, name = a, b
	}
	ip, ipErr := netip.ParseAddr(ref)
	for _, p := range pods {
		if ipErr == nil && p.IP == ip || ipErr != nil && p.Namespace == ns && p.Name == name {
			return p, nil
		}
	}
	if ipErr == nil {
		return Pod{}, fmt.Errorf("no pod has IP %v: %w", ip, ErrNotFound)
	}
	return Pod{}, fmt.Errorf("pod %s/%s: %w", ns, name, ErrNotFound)
}

// FindNode looks a node up by name or underlay IP.
func FindNode(ctx context.Context, src Source, ref string) (Node, error) {
	nodes, err := src.Nodes(ctx)
	if err != nil {
		return Node{}, err
	}
	ip, ipErr := netip.ParseAddr(ref)
	for _, n := range nodes {
		if n.Name == ref || ipErr == nil && n.IP == ip {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("node %s: %w", ref, ErrNotFound)
}

// NodeOfAddr returns the node whose pod CIDR holds a (ok false if none).
func NodeOfAddr(nodes []Node, a netip.Addr) (Node, bool) {
	for _, n := range nodes {
		if n.PodCIDR.IsValid() && n.PodCIDR.Contains(a) {
			return n, true
		}
	}
	return Node{}, false
}

// FindServicePorts looks a Service up by "name" (in namespace), "namespace/name",
// "name:port", a cluster IP or "clusterIP:port". It returns every matching port.
func FindServicePorts(ctx context.Context, src Source, namespace, ref string) ([]servicemap.ServicePort, error) {
	sps, err := src.ServicePorts(ctx)
	if err != nil {
		return nil, err
	}
	var ip netip.Addr
	port := 0
	ns, name := namespace, ref
	if ap, err := netip.ParseAddrPort(ref); err == nil {
		ip, port = ap.Addr(), int(ap.Port())
	} else if a, err := netip.ParseAddr(ref); err == nil {
		ip = a
	} else {
		if h, p, ok := strings.Cut(ref, ":"); ok {
			if port, err = strconv.Atoi(p); err != nil {
				return nil, fmt.Errorf("service %q: port %q is not a number", ref, p)
			}
			name = h
		}
		if a, b, ok := strings.Cut(name, "/"); ok {
			ns, name = a, b
		}
	}
	var out []servicemap.ServicePort
	for _, sp := range sps {
		match := false
		if ip.IsValid() {
			for _, c := range sp.ClusterIPs {
				match = match || c == ip
			}
		} else {
			match = sp.Namespace == ns && sp.Name == name
		}
		if match && (port == 0 || int(sp.Port) == port) {
			out = append(out, sp)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("service %s: %w", ref, ErrNotFound)
	}
	return out, nil
}

// FindNodePort returns the service port exposed on NodePort port (proto "" = any).
func FindNodePort(ctx context.Context, src Source, port int, proto string) (servicemap.ServicePort, error) {
	sps, err := src.ServicePorts(ctx)
	if err != nil {
		return servicemap.ServicePort{}, err
	}
	for _, sp := range sps {
		if int(sp.NodePort) == port && (proto == "" || strings.EqualFold(proto, string(sp.Protocol))) {
			return sp, nil
		}
	}
	return servicemap.ServicePort{}, fmt.Errorf("NodePort %d: %w", port, ErrNotFound)
}
