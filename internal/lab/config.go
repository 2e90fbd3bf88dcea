// Package lab runs a multi-node cluster of network namespaces on one machine: an
// underlay bridge in its own namespace, one namespace per node with its agent and the
// lab's runtime (kubelet), an embedded etcd on a unix socket, and a veth that lets the
// host reach node addresses. Everything it creates carries the prefix "fjord-<name>"
// and is recorded under its state directory, so Down removes all of it even after a
// crash or a kill -9.
package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"github.com/fjord-net/fjord/internal/podnet"
)

// Config describes one lab.
type Config struct {
	Name        string       `json:"name"`        // short: it prefixes interface names (max 15 bytes)
	Nodes       int          `json:"nodes"`       // number of nodes
	Subnet      netip.Prefix `json:"subnet"`      // underlay, inside 198.18.0.0/15
	UnderlayMTU int          `json:"underlayMTU"` // MTU of the underlay links
	Mode        podnet.Mode  `json:"mode"`        // vxlan or routed
	PodMTU      int          `json:"podMTU"`      // 0 = computed by the agents
	ClusterCIDR netip.Prefix `json:"clusterCIDR"` // pod network
	Demo        bool         `json:"demo"`        // start the demo workload
	Binary      string       `json:"binary"`      // the fjord binary the lab runs
	RunRoot     string       `json:"runRoot"`     // parent of state dirs, default /run/fjord
	// ProxyConfig is a KubeProxyConfiguration file handed to every agent (copied into
	// the state directory so the lab does not depend on the original staying put).
	ProxyConfig string `json:"proxyConfig,omitempty"`
	// Kubernetes runs a real control plane (kube-apiserver, controller-manager,
	// scheduler) that fjord's agents and ingress read, instead of fjord's store.
	Kubernetes bool `json:"kubernetes,omitempty"`
	// Runtime is what runs the Kubernetes lab's pods: RuntimeFjord (the lab's own
	// runtime playing the kubelet) or RuntimeContainerd (real kubelets and containerd).
	Runtime string `json:"runtime,omitempty"`
	// KubeBin holds the Kubernetes binaries (see internal/kubebuild).
	KubeBin string `json:"kubeBin,omitempty"`
	// NoIngress leaves fjord's ingress DaemonSet out of a real-kubelet lab (its host
	// ports 80 and 443 on every node shadow host-network servers on those ports,
	// which the upstream e2e suite starts).
	NoIngress bool `json:"noIngress,omitempty"`
	// Zones spreads a real-kubelet lab's nodes over this many zones, round-robin
	// (topology.kubernetes.io/zone); 0 = one zone per node.
	Zones int `json:"zones,omitempty"`
	// ServiceCIDR is the Kubernetes lab's Service range; zero = DefaultServiceCIDR.
	ServiceCIDR netip.Prefix `json:"serviceCIDR,omitzero"`
	// Racks > 1 makes an L3 underlay of that many subnets joined by a router namespace
	// running Router (bird or frr); see racks.go. Encap is bgp mode's --encap.
	Racks  int    `json:"racks,omitempty"`
	Router string `json:"router,omitempty"`
	Encap  string `json:"encap,omitempty"`
}

// The Kubernetes lab's runtimes.
const (
	RuntimeFjord      = "fjord"
	RuntimeContainerd = "containerd"
)

// benchmarkRange is the only underlay range a lab may use (RFC 2544, never routed).
var benchmarkRange = netip.MustParsePrefix("198.18.0.0/15")

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,8}$`)

// Default returns the default lab: three vxlan nodes on 198.18.0.0/24.
func Default() Config {
	return Config{Name: "lab", Nodes: 3, Subnet: netip.MustParsePrefix("198.18.0.0/24"), UnderlayMTU: 1500,
		Mode: podnet.ModeVXLAN, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), Demo: true, RunRoot: "/run/fjord"}
}

// Validate checks the configuration, naming the flag at fault.
func (c Config) Validate() error {
	switch {
	case !nameRE.MatchString(c.Name):
		return fmt.Errorf("--name: %q must be 1-9 lowercase letters or digits, starting with a letter", c.Name)
	case c.Nodes < 1 || c.Nodes > 50:
		return fmt.Errorf("--nodes: %d is outside 1..50", c.Nodes)
	case !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet.Bits() > 26 || !benchmarkRange.Contains(c.Subnet.Addr()) || c.Subnet.Bits() < benchmarkRange.Bits():
		return fmt.Errorf("--subnet: %v must be an IPv4 prefix of /15 to /26 inside %v (the benchmarking range)", c.Subnet, benchmarkRange)
	case c.UnderlayMTU < 1280 || c.UnderlayMTU > 9000:
		return fmt.Errorf("--underlay-mtu: %d is outside 1280..9000", c.UnderlayMTU)
	case c.Binary == "":
		return fmt.Errorf("lab: the fjord binary path is unknown")
	}
	if _, err := podnet.ParseMode(string(c.Mode)); err != nil {
		return fmt.Errorf("--mode: %w", err)
	}
	if c.Kubernetes {
		if c.Runtime != RuntimeFjord && c.Runtime != RuntimeContainerd {
			return fmt.Errorf("--runtime: %q is not %s or %s", c.Runtime, RuntimeFjord, RuntimeContainerd)
		}
		if c.KubeBin == "" {
			return fmt.Errorf("lab: the Kubernetes binaries' directory is unknown")
		}
	} else if c.Runtime != "" && c.Runtime != RuntimeFjord {
		return fmt.Errorf("--runtime %s needs --kubernetes: real kubelets need a real control plane", c.Runtime)
	}
	if c.Zones < 0 || c.Zones > c.Nodes {
		return fmt.Errorf("--zones: %d is outside 0..%d (the number of nodes; 0 = one zone per node)", c.Zones, c.Nodes)
	}
	if c.Zones > 0 && c.Runtime != RuntimeContainerd {
		return fmt.Errorf("--zones needs --kubernetes --runtime containerd: only real kubelets label their nodes with a zone")
	}
	if c.Subnet.Masked() != c.Subnet {
		return fmt.Errorf("--subnet: %v has host bits set (did you mean %v?)", c.Subnet, c.Subnet.Masked())
	}
	return c.validateRacks()
}

// Names of everything the lab creates.

func (c Config) Prefix() string        { return "fjord-" + c.Name }
func (c Config) UnderlayNS() string    { return c.Prefix() + "-ul" }
func (c Config) NodeNS(i int) string   { return fmt.Sprintf("%s-n%d", c.Prefix(), i) }
func (c Config) NodeName(i int) string { return fmt.Sprintf("n%d", i) }
func (c Config) PodNSPrefix() string   { return c.Prefix() + "-pod-" }
func (c Config) HostLink() string      { return c.Prefix() } // root-namespace end of the host veth
func (c Config) StateDir() string      { return filepath.Join(c.RunRoot, c.Name) }
func (c Config) EtcdSocket() string    { return filepath.Join(c.StateDir(), "etcd.sock") }
func (c Config) NodeDir(i int) string  { return filepath.Join(c.StateDir(), "nodes", c.NodeName(i)) }
func (c Config) CNIBinDir() string     { return filepath.Join(c.StateDir(), "bin") }
func (c Config) LogDir() string        { return filepath.Join(c.StateDir(), "logs") }
func (c Config) configPath() string    { return filepath.Join(c.StateDir(), "lab.json") }
func (c Config) HostAddr() netip.Addr  { return c.Subnet.Addr().Next() } // .1
func (c Config) NodeAddr(i int) netip.Addr {
	if c.racked() {
		return c.rackNodeAddr(i)
	}
	a := c.Subnet.Addr()
	for j := 0; j < 10+i; j++ {
		a = a.Next()
	}
	return a // .11, .12, ...
}

// CNIPath is where the lab's runtime looks for CNI plugins: the fjord binary (linked as
// fjord-cni) first, then the reference plugins (portmap) fjord chains with.
func (c Config) CNIPath() []string {
	return []string{c.CNIBinDir(), "/usr/local/lib/fjord/cni", "/opt/cni/bin", "/usr/lib/cni"}
}

func (c Config) save() error {
	b, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(c.configPath(), b, 0o644)
}

// Load reads the configuration of a running (or crashed) lab.
func Load(runRoot, name string) (Config, error) {
	c := Config{Name: name, RunRoot: runRoot}
	b, err := os.ReadFile(c.configPath())
	if err != nil {
		return c, err
	}
	err = json.Unmarshal(b, &c)
	return c, err
}

// proxyConfigPath is where the lab keeps its copy of --proxy-config.
func (c Config) proxyConfigPath() string {
	return filepath.Join(c.StateDir(), "kube-proxy-config.yaml")
}
