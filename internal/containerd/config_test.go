package containerd

import (
	"net/netip"
	"strings"
	"testing"
)

func TestTOML(t *testing.T) {
	got, err := Config{Dir: "/var/lib/fjord/lab/n1/containerd", CNIBinDir: "/opt/cni/bin", CNIConfTemplate: "/var/lib/fjord/lab/n1/cni-template.json"}.TOML()
	if err != nil {
		t.Fatal(err)
	}
	want := `version = 2
root = "/var/lib/fjord/lab/n1/containerd/root"
state = "/var/lib/fjord/lab/n1/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "/var/lib/fjord/lab/n1/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.2"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/var/lib/fjord/lab/n1/containerd/cni/net.d"
    max_conf_num = 1
    conf_template = "/var/lib/fjord/lab/n1/cni-template.json"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "/var/lib/fjord/lab/n1/containerd/runc"
`
	if got != want {
		t.Errorf("TOML:\n%s\nwant:\n%s", got, want)
	}

	metrics, err := Config{Dir: "/tmp/c", MetricsAddress: netip.MustParseAddrPort("127.0.0.1:1338")}.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, "[grpc]\n  address = \"/tmp/c/containerd.sock\"\n\n[metrics]\n  address = \"127.0.0.1:1338\"\n") {
		t.Errorf("MetricsAddress: want a [metrics] section after [grpc]:\n%s", metrics)
	}

	noCRI, err := Config{Dir: "/tmp/c", DisableCRI: true}.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(noCRI, "[plugins.") || !strings.Contains(noCRI, `"io.containerd.grpc.v1.cri"]`) {
		t.Errorf("DisableCRI: want the CRI plugin disabled and not configured:\n%s", noCRI)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Dir: "relative"}, `dir: "relative" is not a clean absolute path`},
		{Config{Dir: "/tmp/x/../y"}, "dir: "},
		{Config{Dir: "/tmp/" + strings.Repeat("d", 100)}, "over the 107 unix sockets allow"},
		{Config{Dir: "/tmp/a\"b"}, "has quotes"},
		{Config{Dir: "/tmp/c", CNIConfDir: "net.d"}, "cniConfDir"},
		{Config{Dir: "/tmp/c", CNIConfTemplate: "t.json"}, "cniConfTemplate"},
		{Config{Dir: "/tmp/c", SandboxImage: "a\"b"}, "sandboxImage"},
		{Config{Dir: "/tmp/c", MetricsAddress: netip.MustParseAddrPort("0.0.0.0:1338")}, "metricsAddress"},
		{Config{Dir: "/tmp/c", MetricsAddress: netip.MustParseAddrPort("127.0.0.1:0")}, "metricsAddress"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := (Config{Dir: "/tmp/c"}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
