package resolve

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// DefaultCNICacheDir is libcni's cache directory, where containerd and CRI-O keep the
// result of every CNI ADD (results/<network>-<container>-<ifname>).
const DefaultCNICacheDir = "/var/lib/cni"

// LocalConfig says where this machine's records are.
type LocalConfig struct {
	// Nodes this machine can enter: every node of a lab, or the machine itself on a
	// real node (Netns "" = the current namespace). PodCIDR, Mode and PodMTU are read
	// from node.json in each node's RunDir when it has one.
	Nodes []Node
	// CNICacheDirs maps a node name to the libcni cache directory of the runtime that
	// creates its pods.
	CNICacheDirs map[string]string
}

// Local answers from files on this machine only; it never blocks on the network.
type Local struct {
	cfg LocalConfig
}

// NewLocal returns a Local source.
func NewLocal(cfg LocalConfig) *Local { return &Local{cfg: cfg} }

// Nodes returns the configured nodes completed from their node.json.
func (l *Local) Nodes(context.Context) ([]Node, error) {
	out := make([]Node, 0, len(l.cfg.Nodes))
	for _, n := range l.cfg.Nodes {
		n.Ready, n.Here = true, true
		if n.RunDir != "" {
			if nn, err := nodestate.Read(n.RunDir); err == nil {
				if n.Name == "" {
					n.Name = nn.Node
				}
				n.PodCIDR, n.Mode, n.PodMTU = nn.PodCIDR, nn.Mode, nn.MTU
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// Pods returns the pods found in the CNI result caches whose namespaces still exist.
func (l *Local) Pods(context.Context) ([]Pod, error) {
	var out []Pod
	nodes := make([]string, 0, len(l.cfg.CNICacheDirs))
	for n := range l.cfg.CNICacheDirs {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		files, _ := filepath.Glob(filepath.Join(l.cfg.CNICacheDirs[node], "results", "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			p, ok := ParseCNICache(b)
			if !ok {
				continue
			}
			if _, err := os.Stat(p.Netns); err != nil {
				continue // a record the runtime has not cleaned up yet
			}
			p.Node = node
			out = append(out, p)
		}
	}
	return out, nil
}

// ServicePorts needs the store.
func (l *Local) ServicePorts(context.Context) ([]servicemap.ServicePort, error) {
	return nil, ErrNeedsStore
}

// IngressBackend needs the store.
func (l *Local) IngressBackend(context.Context, string, string) (Backend, error) {
	return Backend{}, ErrNeedsStore
}

// cniCache is the part of libcni's cached ADD result that locates a pod.
type cniCache struct {
	Kind    string      `json:"kind"`
	IfName  string      `json:"ifName"`
	Netns   string      `json:"netns"`
	CNIArgs [][2]string `json:"cniArgs"`
	Result  struct {
		Interfaces []struct {
			Name    string `json:"name"`
			MTU     int    `json:"mtu"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	} `json:"result"`
}

// ParseCNICache reads one libcni cache file (kind cniCacheV1). ok is false for files
// that do not describe a Kubernetes pod with a network namespace.
func ParseCNICache(b []byte) (p Pod, ok bool) {
	var c cniCache
	if json.Unmarshal(b, &c) != nil || c.Kind != "cniCacheV1" || c.Netns == "" {
		return p, false
	}
	for _, kv := range c.CNIArgs {
		switch kv[0] {
		case "K8S_POD_NAMESPACE":
			p.Namespace = kv[1]
		case "K8S_POD_NAME":
			p.Name = kv[1]
		}
	}
	if p.Namespace == "" || p.Name == "" {
		return p, false
	}
	p.Netns = c.Netns
	for _, ip := range c.Result.IPs {
		if pr, err := netip.ParsePrefix(ip.Address); err == nil && !p.IP.IsValid() {
			p.IP = pr.Addr()
		}
	}
	for _, i := range c.Result.Interfaces {
		switch {
		case i.Sandbox == "" && p.HostVeth == "":
			p.HostVeth = i.Name
		case i.Sandbox != "" && (i.Name == c.IfName || c.IfName == "") && p.MTU == 0:
			p.MTU = i.MTU
		}
	}
	if strings.ContainsAny(p.HostVeth, "/ ") {
		p.HostVeth = ""
	}
	return p, true
}
