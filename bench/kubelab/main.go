// Command bench-kubelab measures the Kubernetes lab with real kubelets (`fjord lab up
// --kubernetes --runtime containerd`: a real control plane, a kubelet, containerd and
// runc per node, fjord installed by deploy/fjord.yaml):
//
//   - how long `lab up` takes, step by step as the lab prints it, with the real-node
//     step split further by watching the processes and the API: warm (everything
//     cached) several times, and once with an empty Kubernetes cache
//     ($FJORD_KUBE_CACHE pointed at a new directory; the Go build cache stays warm);
//   - how long a 30-pod Deployment takes from `kubectl apply` to every pod Ready with
//     fjord as the CNI, against the reference bridge + host-local plugins driven by
//     the same kubelets and containerd, alternated round by round, with what CNI ADD
//     itself costs per pod read from containerd's own timers (its /v1/metrics on each
//     node's loopback);
//   - the resident memory of a real node's containerd, kubelet, fjord agent and shims.
//
// The switch between fjord and the reference happens on the nodes' disks: each node's
// /etc/cni/net.d and /opt/cni/bin are its own directories (internal/lab/nodehost.go),
// containerd uses the first network list in name order and re-reads the directory
// when it changes, so writing 00-kbench-ref.conflist in front of fjord's
// 10-fjord.conflist switches a node to the reference and removing it switches it back;
// containerd is never restarted and fjord's agents keep running throughout.
//
// It rewrites its section of docs/benchmarks.md (between the bench-kubelab markers).
// It must run as root. Its lab has its own name and underlay (kbench, 198.18.210.0/24),
// so it needs no lab lock; it is taken down on exit, failure or signal.
//
//	make build && go run ./bench/kubelab -fjord bin/fjord
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

var (
	flagFjord   = flag.String("fjord", "bin/fjord", "the fjord binary (static: make build)")
	flagName    = flag.String("name", "kbench", "lab name")
	flagSubnet  = flag.String("subnet", "198.18.210.0/24", "lab underlay subnet")
	flagUpRuns  = flag.Int("up-runs", 3, "warm `lab up` runs timed")
	flagFresh   = flag.Bool("fresh-cache", true, "also time one `lab up` with an empty Kubernetes cache (FJORD_KUBE_CACHE; the Go build cache stays warm)")
	flagRounds  = flag.Int("rounds", 7, "measured rounds of the pod start-up benchmark (each runs every CNI once; one more unmeasured round warms up)")
	flagPods    = flag.Int("pods", 30, "replicas of the Deployment")
	flagRefCNI  = flag.String("ref-cni", "", "directory with the reference bridge and host-local plugins (default: go install v1.10.0, CGO_ENABLED=0, into the user cache)")
	flagDoc     = flag.String("doc", "docs/benchmarks.md", "document whose bench-kubelab section is rewritten (\"\" = none)")
	flagSkip    = flag.String("skip", "", "comma-separated parts to skip: up, pods (for debugging; the document is then not written)")
	flagTimeout = flag.Duration("timeout", 90*time.Minute, "hard limit for the whole run")
)

const refVersion = "v1.10.0"

func main() {
	flag.Parse()
	os.Exit(run())
}

// bench is the run's state, so cleanup knows what to undo.
type bench struct {
	fjord    string // absolute
	labUp    bool   // a lab of ours may be up
	freshDir string // an empty Kubernetes cache made for the fresh run
	log      io.Writer
}

func run() (code int) {
	if *flagPods < 3 || *flagRounds < 1 || *flagUpRuns < 0 {
		fmt.Fprintln(os.Stderr, "bench-kubelab: -pods must be at least 3, -rounds at least 1, -up-runs at least 0")
		return 2
	}
	skip := map[string]bool{}
	for _, s := range strings.Split(*flagSkip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if s != "up" && s != "pods" {
				fmt.Fprintf(os.Stderr, "bench-kubelab: -skip: unknown part %q (up, pods)\n", s)
				return 2
			}
			skip[s] = true
		}
	}
	ctx, stop, fjord, err := benchkit.Start(*flagFjord, *flagTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-kubelab:", err)
		return 2
	}
	defer stop()
	b := &bench{log: os.Stderr, fjord: fjord}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "bench-kubelab: panic: %v\n", r)
			code = 1
		}
		b.cleanup()
	}()

	res := &results{Start: time.Now().UTC(), Machine: machineInfo(b.fjord)}
	if err := b.do(ctx, res, skip); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintln(os.Stderr, "bench-kubelab: FAILED:", err)
		return 1
	}
	res.End = time.Now().UTC()
	res.Machine.LoadEnd = benchkit.LoadAvg()
	report := res.markdown()
	fmt.Println(report)
	if *flagDoc != "" && len(skip) == 0 {
		if err := benchkit.WriteSection(*flagDoc, "Kubernetes lab with real kubelets", "bench-kubelab", report); err != nil {
			fmt.Fprintln(os.Stderr, "bench-kubelab: writing document:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench-kubelab: wrote %s\n", *flagDoc)
	}
	return 0
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func (b *bench) do(ctx context.Context, res *results, skip map[string]bool) error {
	refDir := *flagRefCNI
	if !skip["pods"] && refDir == "" {
		var err error
		if refDir, err = b.installRefPlugins(ctx); err != nil {
			return err
		}
	}
	if !skip["up"] {
		if err := b.upTimings(ctx, res); err != nil {
			return fmt.Errorf("lab up timings: %w", err)
		}
	}
	if !skip["pods"] {
		if err := b.podStartup(ctx, res, refDir); err != nil {
			return fmt.Errorf("pod start-up: %w", err)
		}
	}
	return nil
}

// installRefPlugins builds the upstream reference plugins once into the user cache
// (outside fjord's module, so its go.mod and go.sum stay untouched), static and
// stamped as scripts/install-deps.sh builds the portmap and loopback that fjord's
// image puts on every node.
func (b *bench) installRefPlugins(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = "/var/cache"
	}
	dir := filepath.Join(cache, "fjord-bench", "cni-"+refVersion+"-static")
	if isExecutable(filepath.Join(dir, "bridge")) && isExecutable(filepath.Join(dir, "host-local")) {
		return dir, nil
	}
	b.logf("building the reference plugins bridge and host-local %s (CGO_ENABLED=0) into %s", refVersion, dir)
	env := append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "CGO_ENABLED=0")
	_, err = benchkit.RunCmd(ctx, 10*time.Minute, env, "go", "install",
		"-ldflags", "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion="+refVersion,
		"github.com/containernetworking/plugins/plugins/main/bridge@"+refVersion,
		"github.com/containernetworking/plugins/plugins/ipam/host-local@"+refVersion)
	if err != nil {
		return "", fmt.Errorf("installing the reference plugins (or pass -ref-cni DIR): %w", err)
	}
	return dir, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// labDown takes the lab down (also a leftover of a killed run) and returns how long
// it took.
func (b *bench) labDown() (time.Duration, error) {
	t := time.Now()
	out, err := exec.Command(b.fjord, "lab", "down", "--name", *flagName).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("lab down --name %s: %w\n%s", *flagName, err, out)
	}
	return time.Since(t), nil
}

// cleanup takes the lab down and removes the fresh cache; it runs on success, failure,
// panic and signal.
func (b *bench) cleanup() {
	if b.labUp {
		if _, err := b.labDown(); err != nil {
			b.logf("WARNING: %v", err)
		}
	}
	if b.freshDir != "" {
		_ = os.RemoveAll(b.freshDir)
	}
	if _, err := os.Stat(filepath.Join("/run/fjord", *flagName)); err == nil {
		b.logf("WARNING: lab %s still present after cleanup; run: fjord lab down --name %s", *flagName, *flagName)
	}
	b.logf("cleaned up")
}
