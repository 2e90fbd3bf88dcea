package lab

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fjord-net/fjord/internal/containerd"
	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/labimages"
	corev1 "k8s.io/api/core/v1"
)

// Real nodes (--runtime containerd): each node runs Debian's containerd and runc and
// a real kubelet in its network and mount namespaces (nodehost.go), with every image
// built here and imported without a registry.

// RealNodeBinaries are the host programs a real node needs besides the kubelet.
var RealNodeBinaries = []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "nsenter", "unshare"}

// RealNodeMetricsAddr is where each real node's containerd serves its metrics, on
// the node's own loopback (bench/kubelab reads the CRI plugin's CNI timers there).
var RealNodeMetricsAddr = netip.MustParseAddrPort("127.0.0.1:1338")

func (c Config) containerdConfig(i int) containerd.Config {
	return containerd.Config{Dir: filepath.Join(c.DiskDir(i), "containerd"), CNIBinDir: "/opt/cni/bin", CNIConfDir: "/etc/cni/net.d",
		MetricsAddress: RealNodeMetricsAddr}
}

// preflightRealNodes says what is missing for real nodes.
func (c Config) preflightRealNodes() error {
	var missing []string
	for _, b := range RealNodeBinaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--runtime containerd needs %s (Debian: apt-get install containerd runc util-linux; or run scripts/install-deps.sh)", strings.Join(missing, ", "))
	}
	if f, err := elf.Open(c.Binary); err == nil {
		dynamic := false
		for _, p := range f.Progs {
			dynamic = dynamic || p.Type == elf.PT_INTERP
		}
		f.Close()
		if dynamic {
			return fmt.Errorf("%s is dynamically linked; its image must run on any node: build it with CGO_ENABLED=0 (make build does)", c.Binary)
		}
	}
	return c.haveBinaries(append(KubeBinaries, "kubelet"))
}

// startContainerd starts node i's containerd and waits for its socket.
func (c Config) startContainerd(ctx context.Context, i int) error {
	cc := c.containerdConfig(i)
	toml, err := cc.TOML()
	if err != nil {
		return err
	}
	for _, d := range []string{cc.Root(), cc.State(), cc.RuncRoot()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	path := filepath.Join(c.DiskDir(i), "containerd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		return err
	}
	if _, err := c.spawnInNode("containerd-"+c.NodeName(i), i, "containerd", "--config", path); err != nil {
		return err
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if err := exec.CommandContext(ctx, "ctr", "-a", cc.Socket(), "version").Run(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("containerd of %s did not answer on %s (see %s)", c.NodeName(i), cc.Socket(), filepath.Join(c.LogDir(), "containerd-"+c.NodeName(i)+".log"))
}

// importImages loads image tarballs into node i's containerd (the CRI's namespace).
func (c Config) importImages(ctx context.Context, i int, tars []string) error {
	for _, t := range tars {
		out, err := exec.CommandContext(ctx, "ctr", "-a", c.containerdConfig(i).Socket(), "-n", "k8s.io", "images", "import", t).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s into %s: %w: %s", filepath.Base(t), c.NodeName(i), err, out)
		}
	}
	return nil
}

// buildImages makes the lab's images (cached) and fjord's from the running binary.
func (c Config) buildImages(ctx context.Context, logf func(string, ...any)) ([]string, error) {
	built, err := labimages.Build(ctx, labimages.Config{Kube: kubebuild.Config{Logf: logf}})
	if err != nil {
		return nil, err
	}
	var tars []string
	for _, b := range built {
		tars = append(tars, b.File)
	}
	cni := filepath.Join(filepath.Dir(c.Binary), "fjord-cni")
	if _, err := os.Stat(cni); err != nil {
		cni = c.Binary
	}
	fj := filepath.Join(c.DiskRoot(), "fjord-image.tar")
	if _, err := labimages.WriteFjord(fj, labimages.FjordInputs{Version: "dev", Fjord: c.Binary, FjordCNI: cni,
		CNIPluginDir: "/usr/local/lib/fjord/cni", Nft: "/usr/sbin/nft"}); err != nil {
		return nil, fmt.Errorf("fjord's image: %w", err)
	}
	return append(tars, fj), nil
}

func (c Config) kubeletDir(i int) string { return filepath.Join(c.DiskDir(i), "kubelet") }

// startKubelet writes node i's kubelet configuration and starts it.
func (c Config) startKubelet(i int) error {
	dir := c.kubeletDir(i)
	for _, d := range []string{dir, filepath.Join(dir, "pki"), filepath.Join(c.DiskDir(i), "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The node cannot see the lab's state directory (its /run/fjord is its own):
	// everything the kubelet reads is copied next to it.
	kc, err := os.ReadFile(c.Kubeconfig("kubelet-" + c.NodeName(i)))
	if err != nil {
		return err
	}
	files := map[string]string{
		"kubelet.kubeconfig": string(kc),
		// No upstream DNS (the lab has no outside): an unroutable test address fails
		// fast, and CoreDNS forwarding to its own Service cannot loop.
		"resolv.conf":  "nameserver 192.0.2.53\n",
		"kubelet.yaml": c.kubeletConfig(i),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.DiskDir(i), name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	_, err = c.spawnInNode("kubelet-"+c.NodeName(i), i, c.kubeBin("kubelet"),
		"--config="+filepath.Join(c.DiskDir(i), "kubelet.yaml"), "--kubeconfig="+filepath.Join(c.DiskDir(i), "kubelet.kubeconfig"),
		"--root-dir="+dir, "--cert-dir="+filepath.Join(dir, "pki"), "--hostname-override="+c.NodeName(i),
		"--node-ip="+c.NodeAddr(i).String(), "--v=1",
		// One zone per node, so topology-aware routing (zone hints, trafficDistribution)
		// has something to do.
		"--node-labels=topology.kubernetes.io/zone="+c.NodeZone(i))
	return err
}

// kubeletConfig is node i's KubeletConfiguration: the settings a kubelet needs on
// these machines (see the research notes in docs/kubernetes.md).
func (c Config) kubeletConfig(i int) string {
	d := c.DiskDir(i)
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %s
failSwapOn: false
address: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDNS: [%s]
clusterDomain: cluster.local
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
podLogsDir: %s
resolvConf: %s
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 10s
`, c.CgroupRoot(i), c.NodeAddr(i), c.clusterDNS(), c.containerdConfig(i).Socket(), c.containerdConfig(i).Socket(),
		filepath.Join(d, "pod-logs"), filepath.Join(d, "resolv.conf"))
}

// clusterDNS is the kube-dns Service address: the tenth of the Service range.
func (c Config) clusterDNS() string {
	a := c.serviceCIDR().Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a.String()
}

// startRealNodes builds every node's host, starts containerd, imports the images and
// starts the kubelet, nodes in parallel.
func (c Config) startRealNodes(ctx context.Context, tars []string) error {
	var wg sync.WaitGroup
	errs := make([]error, c.Nodes+1)
	for i := 1; i <= c.Nodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.startContainerd(ctx, i); err != nil {
				errs[i] = err
				return
			}
			if err := c.importImages(ctx, i, tars); err != nil {
				errs[i] = err
				return
			}
			errs[i] = c.startKubelet(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// haveBinaries checks that KubeBin holds the named programs.
func (c Config) haveBinaries(names []string) error {
	for _, b := range names {
		if fi, err := os.Stat(c.kubeBin(b)); err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s not found in %s (the Kubernetes build provides it)", b, c.KubeBin)
		}
	}
	return nil
}

// RealPodNetns finds a real node's pod's network namespace from the host: containerd
// keeps the namespace's bind mount inside the node's mount namespace, but any
// process of the pod (found in its kubelet cgroup, .../pod<UID>/...) shows it as
// /proc/<pid>/ns/net.
func (c Config) RealPodNetns(p *corev1.Pod) (string, error) {
	i, err := c.NodeIndex(p.Spec.NodeName)
	if err != nil {
		return "", err
	}
	want := "pod" + string(p.UID)
	for _, h := range cgroupHierarchies() {
		var found string
		_ = filepath.WalkDir(filepath.Join(h, c.CgroupRoot(i)), func(path string, d os.DirEntry, err error) error {
			if err != nil || found != "" || !d.IsDir() || !strings.Contains(path, want) {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			if f := strings.Fields(string(b)); len(f) > 0 {
				found = "/proc/" + f[0] + "/ns/net"
			}
			return nil
		})
		if found != "" {
			return found, nil
		}
	}
	return "", fmt.Errorf("pod %s/%s: no process found in %s's cgroups", p.Namespace, p.Name, p.Spec.NodeName)
}

// NodeZone is the topology.kubernetes.io/zone of a real lab node: one per node, or
// with Zones set, node i in zone (i-1) mod Zones + 1.
func (c Config) NodeZone(i int) string {
	if c.Zones > 0 {
		return fmt.Sprintf("zone-%d", (i-1)%c.Zones+1)
	}
	return fmt.Sprintf("zone-%d", i)
}
