// Package containerd describes a private containerd instance: everything it
// keeps (content, snapshots, state, its socket, runc's state) lives under one
// directory, so several can run on one machine (one per lab node, one per
// test) and removing the directory removes all of them. Config renders its
// configuration file (version 2, containerd 1.6 and later) as plain text.
package containerd

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// DefaultSandboxImage is the pause image Kubernetes v1.37 expects.
const DefaultSandboxImage = "registry.k8s.io/pause:3.10.2"

// Config is one containerd instance.
type Config struct {
	// Dir holds root/, state/, runc/ and containerd.sock. Absolute, and short
	// enough for the socket path (unix sockets allow 107 bytes).
	Dir string
	// SandboxImage is the pod sandbox image of the CRI plugin; default DefaultSandboxImage.
	SandboxImage string
	// CNIBinDir and CNIConfDir are where the CRI plugin finds CNI plugins and
	// their configuration (default Dir/cni/bin, Dir/cni/net.d). CNIConfTemplate,
	// when set, is rendered into CNIConfDir once the kubelet sends the node's
	// pod CIDR (containerd's conf_template).
	CNIBinDir, CNIConfDir, CNIConfTemplate string
	// StreamServerAddress is where the CRI streaming server (exec, attach,
	// port-forward) listens, on a random port; default 127.0.0.1.
	StreamServerAddress string
	// DisableCRI leaves the CRI plugin out, for an instance driven only by
	// ctr (images, containers), never by a kubelet.
	DisableCRI bool
	// MetricsAddress, when set, is where containerd serves its Prometheus metrics
	// (/v1/metrics: the CRI plugin's CNI, sandbox and container timers among them).
	// It must be a loopback address: the metrics are for the node itself.
	MetricsAddress netip.AddrPort
}

// Socket is the instance's gRPC socket.
func (c Config) Socket() string { return filepath.Join(c.Dir, "containerd.sock") }

// RuncRoot is runc's state directory for this instance's containers.
func (c Config) RuncRoot() string { return filepath.Join(c.Dir, "runc") }

// Root and State are containerd's persistent and runtime directories.
func (c Config) Root() string  { return filepath.Join(c.Dir, "root") }
func (c Config) State() string { return filepath.Join(c.Dir, "state") }

func (c Config) withDefaults() Config {
	if c.SandboxImage == "" {
		c.SandboxImage = DefaultSandboxImage
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = filepath.Join(c.Dir, "cni", "bin")
	}
	if c.CNIConfDir == "" {
		c.CNIConfDir = filepath.Join(c.Dir, "cni", "net.d")
	}
	if c.StreamServerAddress == "" {
		c.StreamServerAddress = "127.0.0.1"
	}
	return c
}

// Validate checks the paths.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, f := range []struct{ name, val string }{
		{"dir", c.Dir}, {"cniBinDir", c.CNIBinDir}, {"cniConfDir", c.CNIConfDir}, {"cniConfTemplate", c.CNIConfTemplate},
	} {
		if f.val == "" && f.name == "cniConfTemplate" {
			continue
		}
		if !filepath.IsAbs(f.val) || filepath.Clean(f.val) != f.val {
			return fmt.Errorf("containerd config: %s: %q is not a clean absolute path", f.name, f.val)
		}
		if strings.IndexFunc(f.val, func(r rune) bool { return unicode.IsControl(r) || r == '"' || r == '\\' }) >= 0 {
			return fmt.Errorf("containerd config: %s: %q has quotes, backslashes or control characters", f.name, f.val)
		}
	}
	if n := len(c.Socket()); n > 107 {
		return fmt.Errorf("containerd config: dir: %q makes the socket path %d bytes long, over the 107 unix sockets allow", c.Dir, n)
	}
	if c.MetricsAddress.IsValid() && (!c.MetricsAddress.Addr().IsLoopback() || c.MetricsAddress.Port() == 0) {
		return fmt.Errorf("containerd config: metricsAddress: %v is not a loopback address with a port", c.MetricsAddress)
	}
	if strings.ContainsAny(c.SandboxImage, "\"\\\n") || c.SandboxImage == "" {
		return fmt.Errorf("containerd config: sandboxImage: %q is not an image reference", c.SandboxImage)
	}
	return nil
}

// TOML renders the configuration file.
//
// Besides the paths, it fixes what a containerd inside a lab node on these
// machines needs: restrict_oom_score_adj (processes here lack
// CAP_SYS_RESOURCE, so the CRI plugin's -998 for sandboxes fails every pod),
// cgroupfs rather than systemd cgroups, network namespaces kept under the
// state directory, and no btrfs/zfs/aufs/devmapper snapshotters or tracing.
func (c Config) TOML() (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	c = c.withDefaults()
	q := strconv.Quote
	disabled := []string{"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
		"io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
		"io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"}
	if c.DisableCRI {
		disabled = append(disabled, "io.containerd.grpc.v1.cri")
	}
	quoted := make([]string, len(disabled))
	for i, d := range disabled {
		quoted[i] = q(d)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version = 2\nroot = %s\nstate = %s\ndisabled_plugins = [%s]\n\n", q(c.Root()), q(c.State()), strings.Join(quoted, ", "))
	fmt.Fprintf(&b, "[grpc]\n  address = %s\n", q(c.Socket()))
	if c.MetricsAddress.IsValid() {
		fmt.Fprintf(&b, "\n[metrics]\n  address = %s\n", q(c.MetricsAddress.String()))
	}
	if c.DisableCRI {
		return b.String(), nil
	}
	const cri = `"io.containerd.grpc.v1.cri"`
	fmt.Fprintf(&b, "\n[plugins.%s]\n", cri)
	fmt.Fprintf(&b, "  sandbox_image = %s\n", q(c.SandboxImage))
	fmt.Fprintf(&b, "  stream_server_address = %s\n  stream_server_port = \"0\"\n", q(c.StreamServerAddress))
	b.WriteString("  netns_mounts_under_state_dir = true\n  enable_selinux = false\n  restrict_oom_score_adj = true\n")
	fmt.Fprintf(&b, "  [plugins.%s.cni]\n    bin_dir = %s\n    conf_dir = %s\n    max_conf_num = 1\n", cri, q(c.CNIBinDir), q(c.CNIConfDir))
	if c.CNIConfTemplate != "" {
		fmt.Fprintf(&b, "    conf_template = %s\n", q(c.CNIConfTemplate))
	}
	fmt.Fprintf(&b, "  [plugins.%s.containerd]\n    snapshotter = \"overlayfs\"\n    default_runtime_name = \"runc\"\n", cri)
	fmt.Fprintf(&b, "    [plugins.%s.containerd.runtimes.runc]\n      runtime_type = \"io.containerd.runc.v2\"\n", cri)
	fmt.Fprintf(&b, "      [plugins.%s.containerd.runtimes.runc.options]\n        SystemdCgroup = false\n        Root = %s\n", cri, q(c.RuncRoot()))
	return b.String(), nil
}
