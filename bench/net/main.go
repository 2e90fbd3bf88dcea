// Command bench-net measures fjord's pod network against its peers, on two labs side by
// side (fjord-bench: vxlan on 198.18.50.0/24, fjord-benchr: routed on 198.18.51.0/24):
//
//   - iperf3 throughput pod-to-pod across nodes (1 and 8 streams), vxlan and routed,
//     against raw node-to-node over the same underlay bridge, alternated round-robin;
//   - CNI ADD/DEL latency of fjord's plugin against the reference bridge+host-local
//     plugins (upstream v1.10.0 and Debian's), exec'd from a node namespace the way a
//     runtime does, alternated pod by pod;
//   - the agents' resident memory.
//
// It rewrites its section of docs/benchmarks.md (between the bench-net markers). It
// must run as root; it sends traffic only inside the namespaces the labs create, every
// loop is bounded, and everything it creates is removed on exit, failure or signal.
//
//	make build && go run ./bench/net -fjord bin/fjord
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/fjord-net/fjord/bench/benchkit"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

var (
	flagFjord   = flag.String("fjord", "bin/fjord", "the fjord binary the labs run")
	flagRounds  = flag.Int("rounds", 6, "throughput rounds (each runs every case once)")
	flagSecs    = flag.Int("t", 4, "seconds per iperf3 run")
	flagPods    = flag.Int("pods", 100, "pods per CNI plugin (measured; 3 more per plugin warm up)")
	flagDoc     = flag.String("doc", "docs/benchmarks.md", "document whose bench-net section is rewritten (\"\" = none)")
	flagTimeout = flag.Duration("timeout", 10*time.Minute, "hard limit for the whole run")
	flagRefCNI  = flag.String("ref-cni", "", "directory with upstream bridge and host-local (default: go install v1.10.0 into the user cache)")
	flagSkip    = flag.String("skip", "", "comma-separated parts to skip: throughput, cni (for debugging; the document is then not written)")
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
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-net: must run as root (it creates network namespaces)")
		return 2
	}
	skip := map[string]bool{}
	for _, s := range strings.Split(*flagSkip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			skip[s] = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	b := &bench{log: os.Stderr}
	var err error
	if b.fjord, err = filepath.Abs(*flagFjord); err == nil {
		_, err = os.Stat(b.fjord)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-net: fjord binary: %v (run make build first)\n", err)
		return 2
	}
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
	report := res.markdown()
	fmt.Println(report)
	if *flagDoc != "" && len(skip) == 0 {
		if err := benchkit.WriteSection(*flagDoc, "Pod network", "bench-net", report); err != nil {
			fmt.Fprintln(os.Stderr, "bench-net: writing document:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench-net: wrote %s\n", *flagDoc)
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
	return nil
}

// ---------------------------------------------------------------------------------
// Commands

// runCmd runs a command with a time limit and returns its stdout; errors carry stderr.
func runCmd(ctx context.Context, limit time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return []byte(stdout.String()), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return []byte(stdout.String()), nil
}

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
	_, err = runCmd(ctx, 5*time.Minute, env, "go", "install",
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
	_, err := runCmd(ctx, 90*time.Second, os.Environ(), b.fjord, "lab", "up", "--name", l.Name,
		"--subnet", l.Subnet, "--mode", l.Mode, "--nodes", "3", "--no-demo")
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
	out, err := runCmd(context.Background(), 60*time.Second, os.Environ(), b.fjord, "lab", "down", "--name", l.Name)
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
	for _, l := range []lab{vxlanLab, routedLab} {
		if labPresent(l) {
			b.logf("WARNING: lab %s still present after cleanup; run: fjord lab down --name %s", l.Name, l.Name)
		}
	}
	b.logf("cleaned up")
}

// ---------------------------------------------------------------------------------
// Throughput

type tpCase struct {
	Name     string // "raw", "vxlan", "routed"
	Streams  int
	ClientNS string
	Server   string // IP
	MTU      int
	Gbps     []float64
	Retr     []float64
}

func (c *tpCase) label() string { return fmt.Sprintf("%s -P %d", c.Name, c.Streams) }

type pod struct{ IP, Netns string }

func (b *bench) throughput(ctx context.Context, res *results) error {
	type pair struct{ client, server pod }
	pods := map[string]pair{}
	for _, l := range []lab{vxlanLab, routedLab} {
		if err := b.applyPods(ctx, l); err != nil {
			return err
		}
		c, err := b.waitPod(ctx, l, "iperf-client")
		if err != nil {
			return err
		}
		s, err := b.waitPod(ctx, l, "iperf-server")
		if err != nil {
			return err
		}
		pods[l.Mode] = pair{c, s}
	}
	// Raw: iperf3 in the node namespaces themselves, over the underlay bridge.
	if err := b.startServer(vxlanLab.nodeNS(2)); err != nil {
		return err
	}
	rawMTU, err := ifaceMTU(vxlanLab.nodeNS(1), "eth0")
	if err != nil {
		return err
	}
	// Context only: TCP over loopback inside n1, the same-host ceiling with no veth.
	if err := b.startServer(vxlanLab.nodeNS(1)); err != nil {
		return err
	}
	loMTU, err := ifaceMTU(vxlanLab.nodeNS(1), "lo")
	if err != nil {
		return err
	}
	cases := []*tpCase{{Name: "loopback", Streams: 1, ClientNS: vxlanLab.nodeNS(1), Server: "127.0.0.1", MTU: loMTU}}
	for _, p := range []int{1, 8} {
		cases = append(cases, &tpCase{Name: "raw", Streams: p, ClientNS: vxlanLab.nodeNS(1), Server: vxlanLab.nodeAddr(2), MTU: rawMTU})
		for _, mode := range []string{"vxlan", "routed"} {
			pp := pods[mode]
			mtu, err := ifaceMTU(filepath.Base(pp.client.Netns), "eth0")
			if err != nil {
				return err
			}
			cases = append(cases, &tpCase{Name: mode, Streams: p, ClientNS: filepath.Base(pp.client.Netns), Server: pp.server.IP, MTU: mtu})
		}
	}
	// Warm up every path (and wait for the servers) with a 1 s run each, discarded.
	for _, c := range cases {
		var err error
		for try := 0; try < 20; try++ {
			if _, _, err = iperf(ctx, c.ClientNS, c.Server, c.Streams, 1); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("warm-up %s: %w", c.label(), err)
		}
	}
	// Rounds: every case once per round. The starting case rotates and every other
	// round runs backwards, so no case always runs first, or always after the same one.
	for r := 0; r < *flagRounds; r++ {
		for k := range cases {
			if r%2 == 1 {
				k = len(cases) - 1 - k
			}
			c := cases[(k+r)%len(cases)]
			gbps, retr, err := iperf(ctx, c.ClientNS, c.Server, c.Streams, *flagSecs)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, c.label(), err)
			}
			c.Gbps, c.Retr = append(c.Gbps, gbps), append(c.Retr, float64(retr))
			b.logf("round %d/%d  %-12s %6.2f Gbit/s  %5d retransmits", r+1, *flagRounds, c.label(), gbps, retr)
		}
	}
	res.Throughput = cases
	return nil
}

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: iperf-server
  labels: {app: bench-net}
spec:
  nodeName: n2
  containers:
  - name: iperf3
    image: iperf3
    command: ["iperf3", "-s"]
---
apiVersion: v1
kind: Pod
metadata:
  name: iperf-client
  labels: {app: bench-net}
spec:
  nodeName: n1
  containers:
  - name: idle
    image: fjord
`

func (b *bench) applyPods(ctx context.Context, l lab) error {
	f := filepath.Join(b.tmp, "pods.yaml")
	if err := os.WriteFile(f, []byte(podYAML), 0o644); err != nil {
		return err
	}
	_, err := runCmd(ctx, 30*time.Second, l.env(), b.fjord, "apply", "-f", f)
	return err
}

// waitPod polls until the pod runs with an address and a namespace (at most 60 s).
func (b *bench) waitPod(ctx context.Context, l lab, name string) (pod, error) {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		out, err := runCmd(ctx, 10*time.Second, l.env(), b.fjord, "get", "pod", name, "-o", "json")
		if err == nil {
			var p struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Status struct {
					Phase string `json:"phase"`
					PodIP string `json:"podIP"`
				} `json:"status"`
			}
			if err := json.Unmarshal(out, &p); err == nil {
				last = p.Status.Phase
				ns := p.Metadata.Annotations["fjord.dev/netns"]
				if p.Status.Phase == "Running" && p.Status.PodIP != "" && ns != "" {
					return pod{IP: p.Status.PodIP, Netns: ns}, nil
				}
			}
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return pod{}, fmt.Errorf("lab %s: pod %s not running after 60 s (last: %s)", l.Name, name, last)
}

// startServer runs `iperf3 -s` in a namespace until cleanup (or until this process
// dies: the kernel then kills it).
func (b *bench) startServer(ns string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "iperf3", "-s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("iperf3 server in %s: %w", ns, err)
	}
	b.servers = append(b.servers, cmd)
	return nil
}

func ifaceMTU(ns, dev string) (int, error) {
	out, err := runCmd(context.Background(), 10*time.Second, os.Environ(), "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+dev+"/mtu")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// iperf runs one client and returns the receiver's throughput and the retransmits.
func iperf(ctx context.Context, ns, server string, streams, secs int) (float64, int, error) {
	out, err := runCmd(ctx, time.Duration(secs+15)*time.Second, os.Environ(), "ip", "netns", "exec", ns,
		"iperf3", "-c", server, "-t", strconv.Itoa(secs), "-P", strconv.Itoa(streams), "-J", "--connect-timeout", "2000")
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &r); jerr == nil && r.Error != "" {
		return 0, 0, fmt.Errorf("iperf3 -c %s in %s: %s", server, ns, r.Error)
	}
	if err != nil {
		return 0, 0, err
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, 0, fmt.Errorf("iperf3 -c %s in %s: no throughput in its report", server, ns)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, r.End.SumSent.Retransmits, nil
}

// ---------------------------------------------------------------------------------
// Agent memory

type rssRow struct {
	Lab, Mode string
	RSS, HWM  []float64 // MiB, per node n1..n3
}

// agentRSS reads VmRSS and VmHWM of the lab's agents, found by the marker the lab sets.
func agentRSS(l lab) (rssRow, error) {
	row := rssRow{Lab: l.Name, Mode: l.Mode}
	entries, _ := os.ReadDir("/proc")
	found := map[int][2]float64{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !slices.Contains(vars, "FJORD_LAB="+l.Name) {
			continue
		}
		for _, v := range vars {
			if n, ok := strings.CutPrefix(v, "FJORD_LAB_PROC=agent-n"); ok {
				i, _ := strconv.Atoi(n)
				rss, hwm := procStatus(e.Name(), "VmRSS"), procStatus(e.Name(), "VmHWM")
				if rss > 0 {
					found[i] = [2]float64{rss, hwm}
				}
			}
		}
	}
	for i := 1; i <= 3; i++ {
		v, ok := found[i]
		if !ok {
			return row, fmt.Errorf("lab %s: agent-n%d not found in /proc", l.Name, i)
		}
		row.RSS, row.HWM = append(row.RSS, v[0]), append(row.HWM, v[1])
	}
	return row, nil
}

// procStatus returns a /proc/PID/status field in MiB (0 if absent).
func procStatus(pid, field string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// ---------------------------------------------------------------------------------
// CNI latency

type plugin struct {
	Key, Name, Note string
	Path, CNIPath   string
	Conf            []byte
	Add, Del        []float64 // ms, measured pods only
	attached        []attachment
}

type attachment struct{ id, ns string }

func (b *bench) cniLatency(ctx context.Context, res *results, refDir string) error {
	l := vxlanLab
	const node = 3 // no pods of ours there
	runDir := l.nodeRunDir(node)
	if !fileExists(filepath.Join(runDir, "node.json")) {
		return fmt.Errorf("%s/node.json missing: the agent on n%d has not published it", runDir, node)
	}
	binDir := filepath.Join(l.stateDir(), "bin")
	labPlugin := filepath.Join(binDir, "fjord-cni")
	labTarget, err := filepath.EvalSymlinks(labPlugin)
	if err != nil {
		return fmt.Errorf("the lab's plugin %s: %w", labPlugin, err)
	}
	mk := func(key string) string {
		d := filepath.Join(b.tmp, "cni-"+key)
		_ = os.MkdirAll(d, 0o755)
		return d
	}
	fjordConf := func(key string) []byte {
		c, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "benchnet", "type": "fjord", "runDir": runDir, "dataDir": mk(key)})
		return c
	}
	bridgeConf := func(key, br, subnet string) []byte {
		c, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "benchref", "type": "bridge",
			"bridge": br, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}}, "dataDir": mk(key)}})
		return c
	}
	plugins := []*plugin{{
		Key: "f", Name: "fjord", Note: fmt.Sprintf("`%s` → %s (%s)", labPlugin, labTarget, binSize(labTarget)),
		Path: labPlugin, CNIPath: binDir, Conf: fjordConf("f"),
	}}
	if full, _ := filepath.EvalSymlinks(b.fjord); full != labTarget {
		// The lab execs a slim plugin build; measure the all-in-one binary too.
		plugins = append(plugins, &plugin{
			Key: "a", Name: "fjord (all-in-one binary)", Note: fmt.Sprintf("%s with CNI_COMMAND set (%s)", full, binSize(full)),
			Path: full, CNIPath: binDir, Conf: fjordConf("a"),
		})
	}
	plugins = append(plugins,
		&plugin{Key: "u", Name: "bridge+host-local " + refVersion, Note: fmt.Sprintf("upstream, `go install` (bridge %s)", binSize(filepath.Join(refDir, "bridge"))),
			Path: filepath.Join(refDir, "bridge"), CNIPath: refDir, Conf: bridgeConf("u", "fjbr0", "10.99.0.0/24")},
		&plugin{Key: "d", Name: "bridge+host-local (Debian)", Note: fmt.Sprintf("/usr/lib/cni, %s (bridge %s)", debianPluginsVersion(), binSize("/usr/lib/cni/bridge")),
			Path: "/usr/lib/cni/bridge", CNIPath: "/usr/lib/cni", Conf: bridgeConf("d", "fjbr1", "10.99.1.0/24")},
	)
	for _, p := range plugins {
		if !fileExists(p.Path) {
			return fmt.Errorf("plugin %s: %s missing", p.Name, p.Path)
		}
	}
	// One goroutine, locked to an OS thread that lives in the node's namespace, execs
	// every plugin: the children inherit that namespace, as under a runtime on the node.
	w, err := newNSWorker(l.nodeNS(node))
	if err != nil {
		return err
	}
	defer w.close()

	total := warmupPods + *flagPods
	b.logf("CNI: %d pods per plugin (%d warm-up) on %s, plugins alternated", *flagPods, warmupPods, l.nodeNS(node))
	for i := 0; i < total; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for k := range plugins {
			p := plugins[(i+k)%len(plugins)]
			id := fmt.Sprintf("benchnet-%s-%03d", p.Key, i)
			nsName := fmt.Sprintf("%s-cni-%s-%03d", l.prefix(), p.Key, i)
			if err := w.newNetns(nsName); err != nil {
				return fmt.Errorf("creating %s: %w", nsName, err)
			}
			b.cniNS = append(b.cniNS, nsName)
			d, out, err := w.exec(ctx, p, "ADD", id, "/run/netns/"+nsName)
			if err != nil {
				return fmt.Errorf("%s ADD %s: %w", p.Name, id, err)
			}
			if err := checkResult(out); err != nil {
				return fmt.Errorf("%s ADD %s: %w", p.Name, id, err)
			}
			p.attached = append(p.attached, attachment{id, "/run/netns/" + nsName})
			if i >= warmupPods {
				p.Add = append(p.Add, ms(d))
			}
		}
	}
	b.logf("CNI: DEL all")
	for i := 0; i < total; i++ {
		for k := range plugins {
			p := plugins[(i+k)%len(plugins)]
			a := p.attached[i]
			d, _, err := w.exec(ctx, p, "DEL", a.id, a.ns)
			if err != nil {
				return fmt.Errorf("%s DEL %s: %w", p.Name, a.id, err)
			}
			if i >= warmupPods {
				p.Del = append(p.Del, ms(d))
			}
		}
	}
	// The bridges stay after the last DEL (as with any runtime); the node's namespace
	// goes with the lab anyway.
	_, _ = runCmd(ctx, 10*time.Second, os.Environ(), "ip", "netns", "exec", l.nodeNS(node), "sh", "-c", "ip link del fjbr0; ip link del fjbr1")
	for _, n := range b.cniNS {
		_ = netns.DeleteNamed(n)
	}
	b.cniNS = nil
	for _, p := range plugins {
		b.logf("CNI %-28s ADD p50 %6.2f ms p99 %6.2f ms | DEL p50 %6.2f ms", p.Name, benchkit.Pct(p.Add, 50), benchkit.Pct(p.Add, 99), benchkit.Pct(p.Del, 50))
	}
	res.CNI = plugins
	res.CNINode = l.nodeNS(node)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func binSize(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
}

func debianPluginsVersion() string {
	out, err := runCmd(context.Background(), 10*time.Second, os.Environ(), "dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins")
	if err != nil {
		return "containernetworking-plugins"
	}
	return "containernetworking-plugins " + strings.TrimSpace(string(out))
}

// checkResult accepts a CNI result with at least one address.
func checkResult(out []byte) error {
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("result: %v: %s", err, out)
	}
	if len(r.IPs) == 0 || r.IPs[0].Address == "" {
		return fmt.Errorf("result has no address: %s", out)
	}
	return nil
}

// nsWorker runs jobs on one OS thread that sits in a node's namespace.
type nsWorker struct {
	jobs chan func()
	done chan struct{}
}

func newNSWorker(nsName string) (*nsWorker, error) {
	w := &nsWorker{jobs: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(w.done)
		// Never unlocked: when this goroutine ends, its thread (in a foreign
		// namespace) ends with it instead of returning to Go's pool.
		runtime.LockOSThread()
		h, err := netns.GetFromName(nsName)
		if err == nil {
			err = netns.Set(h)
			_ = h.Close()
		}
		errc <- err
		if err != nil {
			return
		}
		for job := range w.jobs {
			job()
		}
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("entering %s: %w", nsName, err)
	}
	return w, nil
}

func (w *nsWorker) run(f func()) {
	ran := make(chan struct{})
	w.jobs <- func() { f(); close(ran) }
	<-ran
}

func (w *nsWorker) close() { close(w.jobs); <-w.done }

// newNetns creates a named namespace; the worker thread returns to the node's.
func (w *nsWorker) newNetns(name string) (err error) {
	w.run(func() {
		var node, created netns.NsHandle
		if node, err = netns.Get(); err != nil {
			return
		}
		defer node.Close()
		if created, err = netns.NewNamed(name); err != nil {
			_ = netns.Set(node)
			return
		}
		_ = created.Close()
		err = netns.Set(node)
	})
	return err
}

// exec runs one CNI command the way a runtime does and returns its wall time.
func (w *nsWorker) exec(ctx context.Context, p *plugin, command, id, nsPath string) (d time.Duration, out []byte, err error) {
	w.run(func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, p.Path)
		cmd.Args[0] = filepath.Base(p.Path)
		cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + nsPath,
			"CNI_IFNAME=eth0", "CNI_PATH=" + p.CNIPath, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = strings.NewReader(string(p.Conf))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err = cmd.Run()
		d = time.Since(start)
		out = []byte(stdout.String())
		if err != nil {
			err = fmt.Errorf("%w: %s %s", err, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
		}
	})
	return d, out, err
}

// ---------------------------------------------------------------------------------
// Statistics
