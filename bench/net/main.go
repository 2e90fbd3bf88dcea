// Command bench-net measures fjord's pod network against its peers, on two labs side by
// side (fjord-bench: vxlan on 198.18.50.0/24, fjord-benchr: routed on 198.18.51.0/24):
//
//   - iperf3 throughput pod-to-pod across nodes (1 and 8 streams), vxlan and routed,
//     against raw node-to-node over the same underlay bridge, alternated round-robin;
//   - CNI ADD/DEL latency of fjord's plugin against the reference bridge+host-local
//     plugins (upstream v1.10.0 and Debian's), exec'd from a node namespace the way a
//     runtime does, alternated pod by pod;
//   - the agents' resident memory;
//   - bgp mode on two racks (bgp.go): pod to pod against raw through the router and
//     vxlan over the same racks, and node join and death convergence.
//
// It rewrites its section of docs/benchmarks.md (between the bench-net markers). It
// must run as root; it sends traffic only inside the namespaces the labs create, every
// loop is bounded, and everything it creates is removed on exit, failure or signal.
//
//	make build && go run ./bench/net -fjord bin/fjord
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"

	"github.com/vishvananda/netns"
)

var (
	flagFjord   = flag.String("fjord", "bin/fjord", "the fjord binary the labs run")
	flagRounds  = flag.Int("rounds", 6, "throughput rounds (each runs every case once)")
	flagSecs    = flag.Int("t", 4, "seconds per iperf3 run")
	flagPods    = flag.Int("pods", 100, "pods per CNI plugin (measured; 3 more per plugin warm up)")
	flagDoc     = flag.String("doc", "docs/benchmarks.md", "document whose bench-net section is rewritten (\"\" = none)")
	flagTimeout = flag.Duration("timeout", 25*time.Minute, "hard limit for the whole run")
	flagRefCNI  = flag.String("ref-cni", "", "directory with upstream bridge and host-local (default: go install v1.10.0 into the user cache)")
	flagSkip    = flag.String("skip", "", "comma-separated parts to skip: throughput, cni, bgp (a section whose parts were skipped is not written)")
)

const (
	refVersion = "v1.10.0"
	warmupPods = 3
	runRoot    = "/run/fjord"
	beginMark  = "<!-- bench-net:begin -->"
	endMark    = "<!-- bench-net:end -->"
)

// lab is one of the two labs this benchmark brings up.
type lab struct {
	Name, Subnet, Mode string
	Extra              []string // more `lab up` flags (the racked labs of bgp.go)
}

var (
	vxlanLab  = lab{Name: "bench", Subnet: "198.18.50.0/24", Mode: "vxlan"}
	routedLab = lab{Name: "benchr", Subnet: "198.18.51.0/24", Mode: "routed"}
)

func (l lab) prefix() string      { return "fjord-" + l.Name }
func (l lab) nodeNS(i int) string { return fmt.Sprintf("%s-n%d", l.prefix(), i) }
func (l lab) stateDir() string    { return filepath.Join(runRoot, l.Name) }
func (l lab) env() []string {
	return append(os.Environ(), "FJORD_ETCD_ENDPOINTS=unix://"+l.stateDir()+"/etcd.sock")
}
func (l lab) nodeRunDir(i int) string {
	return filepath.Join(l.stateDir(), "nodes", fmt.Sprintf("n%d", i), "run")
}
func (l lab) nodeAddr(i int) string {
	p := netip.MustParsePrefix(l.Subnet)
	a := p.Addr()
	for j := 0; j < 10+i; j++ {
		a = a.Next()
	}
	return a.String()
}

// bench holds the run's state, so cleanup knows what to undo.
type bench struct {
	fjord   string // absolute path
	tmp     string
	servers []*exec.Cmd // iperf3 servers started in node namespaces
	cniNS   []string    // pod namespaces created for the CNI benchmark
	labsUp  []lab
	log     io.Writer
}

func main() {
	flag.Parse()
	os.Exit(run())
}

func run() (code int) {
	skip := map[string]bool{}
	for _, s := range strings.Split(*flagSkip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			skip[s] = true
		}
	}
	ctx, stop, fjord, err := benchkit.Start(*flagFjord, *flagTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-net:", err)
		return 2
	}
	defer stop()
	b := &bench{log: os.Stderr, fjord: fjord}
	for _, tool := range []string{"iperf3", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "bench-net: %s not found (apt-get install iperf3 iproute2)\n", tool)
			return 2
		}
	}
	if b.tmp, err = os.MkdirTemp("", "fjord-bench-net-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench-net:", err)
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "bench-net: panic: %v\n", r)
			code = 1
		}
		b.cleanup()
	}()

	res := &results{Start: time.Now().UTC(), Machine: machineInfo(b.fjord)}
	if err := b.do(ctx, res, skip); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintln(os.Stderr, "bench-net: FAILED:", err)
		return 1
	}
	res.End = time.Now().UTC()
	res.Machine.LoadEnd = benchkit.LoadAvg()
	// Each section is written when the parts it reports all ran: the pod network's
	// (throughput and CNI) and the BGP one (-skip throughput,cni refreshes only it).
	var sections [][3]string
	if !skip["throughput"] && !skip["cni"] {
		sections = append(sections, [3]string{"Pod network", "bench-net", res.markdown()})
	}
	if !skip["bgp"] {
		sections = append(sections, [3]string{"Pod network: BGP mode across two racks", "bench-net-bgp", res.BGP.markdown(res)})
	}
	for _, sec := range sections {
		fmt.Println(sec[2])
		if *flagDoc == "" {
			continue
		}
		if err := benchkit.WriteSection(*flagDoc, sec[0], sec[1], sec[2]); err != nil {
			fmt.Fprintln(os.Stderr, "bench-net: writing document:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench-net: wrote the %s section of %s\n", sec[0], *flagDoc)
	}
	return 0
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func (b *bench) do(ctx context.Context, res *results, skip map[string]bool) error {
	refDir := *flagRefCNI
	if !skip["cni"] && refDir == "" {
		var err error
		if refDir, err = b.installRefPlugins(ctx); err != nil {
			return err
		}
	}
	for _, l := range []lab{vxlanLab, routedLab} {
		if err := b.labUp(ctx, l); err != nil {
			return err
		}
	}
	if !skip["throughput"] {
		if err := b.throughput(ctx, res); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	// Memory after the traffic, before the CNI run adds pods to n3.
	for _, l := range []lab{vxlanLab, routedLab} {
		rss, err := agentRSS(l)
		if err != nil {
			return err
		}
		res.RSS = append(res.RSS, rss)
	}
	if !skip["cni"] {
		if err := b.cniLatency(ctx, res, refDir); err != nil {
			return fmt.Errorf("cni: %w", err)
		}
	}
	if !skip["bgp"] {
		// The racked labs come up after the others are measured, not beside them.
		for _, l := range []lab{vxlanLab, routedLab} {
			b.labDown(l)
		}
		b.labsUp = nil
		if err := b.bgp(ctx, res); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------
// Commands

// installRefPlugins builds the upstream reference plugins once into the user cache
// (outside fjord's module, so its go.mod and go.sum stay untouched).
func (b *bench) installRefPlugins(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = "/var/cache"
	}
	dir := filepath.Join(cache, "fjord-bench", "cni-"+refVersion)
	if fileExists(filepath.Join(dir, "bridge")) && fileExists(filepath.Join(dir, "host-local")) {
		return dir, nil
	}
	b.logf("building reference plugins bridge and host-local %s into %s", refVersion, dir)
	env := append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	_, err = benchkit.RunCmd(ctx, 5*time.Minute, env, "go", "install",
		"github.com/containernetworking/plugins/plugins/main/bridge@"+refVersion,
		"github.com/containernetworking/plugins/plugins/ipam/host-local@"+refVersion)
	if err != nil {
		return "", fmt.Errorf("installing reference plugins (or pass -ref-cni DIR): %w", err)
	}
	return dir, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// labUp brings a lab up with no demo pods (its nodes stay empty except for ours). A
// leftover lab of the same name, from a run that was killed, is removed first.
func (b *bench) labUp(ctx context.Context, l lab) error {
	if labPresent(l) {
		b.logf("removing leftover lab %s", l.Name)
		b.labDown(l)
	}
	b.logf("lab up %s (%s, %s)", l.Name, l.Mode, l.Subnet)
	b.labsUp = append(b.labsUp, l) // recorded first: a half-up lab is taken down too
	_, err := benchkit.RunCmd(ctx, 90*time.Second, os.Environ(), b.fjord, append([]string{"lab", "up", "--name", l.Name,
		"--subnet", l.Subnet, "--mode", l.Mode, "--nodes", "3", "--no-demo"}, l.Extra...)...)
	return err
}

func labPresent(l lab) bool {
	if fileExists(l.stateDir()) {
		return true
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.prefix()+"-") {
			return true
		}
	}
	return false
}

func (b *bench) labDown(l lab) {
	out, err := benchkit.RunCmd(context.Background(), 60*time.Second, os.Environ(), b.fjord, "lab", "down", "--name", l.Name)
	if err != nil {
		b.logf("WARNING: lab down %s: %v\n%s", l.Name, err, out)
	}
}

// cleanup undoes everything, in reverse: servers, CNI namespaces, labs, temp dir. It
// runs on success, failure, panic and signal.
func (b *bench) cleanup() {
	for _, s := range b.servers {
		if s.Process != nil {
			_ = syscall.Kill(-s.Process.Pid, syscall.SIGKILL)
			_ = s.Wait()
		}
	}
	for _, n := range b.cniNS {
		if err := netns.DeleteNamed(n); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.logf("WARNING: delete netns %s: %v", n, err)
		}
	}
	for _, l := range slices.Backward(b.labsUp) {
		b.labDown(l)
	}
	_ = os.RemoveAll(b.tmp)
	for _, l := range []lab{vxlanLab, routedLab, bgpLab, racksVXLANLab} {
		if labPresent(l) {
			b.logf("WARNING: lab %s still present after cleanup; run: fjord lab down --name %s", l.Name, l.Name)
		}
	}
	b.logf("cleaned up")
}

// ---------------------------------------------------------------------------------
// Statistics
