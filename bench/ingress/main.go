// Command bench-ingress measures fjord's ingress proxy against nginx and HAProxy
// (Debian packages) on loopback: the same backends, the same CPUs, the same
// keep-alive settings (the seed's nginx-configuration ConfigMap), alternated in
// one run over several rounds.
//
//   - fjord: `fjord ingress` reading an Ingress, a selector-less Service, an
//     EndpointSlice and the seed's ConfigMap from a private `fjord etcd` store;
//   - nginx: its own nginx.conf rendered the way ingress-nginx renders the seed's
//     settings (worker_processes = CPUs, keepalive_timeout 75s, keepalive_requests
//     1000, an upstream block with keepalive 64, proxy_http_version 1.1,
//     Connection "", the forwarded headers and the access log in the seed's
//     log-format-upstream);
//   - HAProxy: the equivalent haproxy.cfg (nbthread = CPUs, http-reuse always,
//     the same timeouts, headers and an access log in the same format);
//   - direct: wrk straight to one backend, the ceiling on this machine.
//
// Load is wrk with keep-alive at several connection counts (-c 1 is the
// one-connection latency run); every run uses --latency and the p50/p99 of
// wrk's distribution. The proxies run on one CPU set, wrk and the backends on
// the other (taskset), identically for all three.
//
// It rewrites its section of docs/benchmarks.md (between the bench-ingress
// markers) and the plot docs/bench-ingress.png. It sends traffic only to
// 127.0.0.0/8, every run is bounded in time, and every process and file it
// creates is removed on exit, failure or signal.
//
//	make build && go run ./bench/ingress -fjord bin/fjord
//	go run ./bench/ingress -quick -doc "" -plot ""   # about 2 minutes, nothing written
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

var (
	flagFjord    = flag.String("fjord", "bin/fjord", "the fjord binary (store, apply and, with -runner fjord, the ingress)")
	flagRunner   = flag.String("runner", "auto", "what runs fjord's ingress: fjord (`fjord ingress`), self (this program calling server.Run, same code), auto (fjord if it has the ingress command)")
	flagRounds   = flag.Int("rounds", 4, "rounds; each runs every target at every connection count once")
	flagDur      = flag.Duration("d", 8*time.Second, "duration of one wrk run")
	flagConns    = flag.String("conns", "1,16,64,256", "wrk connection counts (1 = the one-connection latency run)")
	flagThreads  = flag.Int("threads", 1, "wrk threads (at most the connection count; wrk has the client CPU set to itself and the backends)")
	flagTargets  = flag.String("targets", "fjord,nginx,haproxy,direct", "targets to measure")
	flagBackends = flag.Int("backends", 3, "backend processes (on 127.0.0.1, 127.0.0.2, ... one port)")
	flagProxyCPU = flag.String("proxy-cpus", "0", "taskset CPU list for the proxies (all three)")
	flagClientCP = flag.String("client-cpus", "1", "taskset CPU list for wrk, the backends and the store")
	flagWarmup   = flag.Duration("warmup", 2*time.Second, "discarded wrk run per target before the first round")
	flagQuick    = flag.Bool("quick", false, "a short run: 1 round of 3 s, connections 1,64 (the document is not written unless -doc is given explicitly)")
	flagDoc      = flag.String("doc", "docs/benchmarks.md", "document whose bench-ingress section is rewritten (\"\" = none)")
	flagPlot     = flag.String("plot", "docs/bench-ingress.png", "PNG plot to write (\"\" = none)")
	flagTimeout  = flag.Duration("timeout", 15*time.Minute, "hard limit for the whole run")
	flagInstall  = flag.Bool("install", true, "apt-get install nginx-light, haproxy, wrk and gnuplot-nox if missing")
	flagProfile  = flag.Bool("profile", true, "after the measured runs, take a CPU profile of fjord's ingress (this program's server.Run with pprof, wrk -c 64) and put its top functions in the report")
	flagProfOut  = flag.String("profile-out", "", "also keep the raw CPU profile in this file")
	flagSeed     = flag.String("seed", "internal/ingress/nginxconf/testdata/nginx-configuration.yaml", "the seed's ConfigMap (a copy of shared/fixtures/nginx-configuration.yaml): fjord reads it from the store, nginx's and HAProxy's configs are rendered from it")
	flagStrace   = flag.Bool("strace", true, "count each proxy's system calls per request with strace -c (after the measured runs)")
	flagQuiet    = flag.Duration("quiet-wait", 2*time.Minute, "before measuring, wait up to this long for other processes to use less than 0.2 CPU")
	flagJSON     = flag.String("json", "", "also save every measurement to this JSON file")
	flagRender   = flag.String("render", "", "measure nothing: rewrite the section and the plot from a -json file of an earlier run")
	flagKeep     = flag.Bool("keep", false, "keep the temp directory (configs, logs) for debugging")

	// Internal roles: the program re-executes itself as a backend or as the
	// self ingress runner.
	flagRole = flag.String("role", "", "internal: backend | ingress")
)

const (
	beginMark = "<!-- bench-ingress:begin -->"
	endMark   = "<!-- bench-ingress:end -->"
	host      = "bench.local"
)

func main() {
	flag.Parse()
	switch *flagRole {
	case "":
		os.Exit(run())
	case "backend":
		os.Exit(roleBackend())
	case "ingress":
		os.Exit(roleIngress())
	default:
		fmt.Fprintln(os.Stderr, "bench-ingress: unknown -role", *flagRole)
		os.Exit(2)
	}
}

// bench holds the run's state, so cleanup knows what to undo.
type bench struct {
	fjord, self  string // absolute paths
	tmp          string
	procs        []*proc
	log          io.Writer
	notes        []string // setup facts for the report
	conns        []int
	targets      []*target
	backendPort  int
	backendIPs   []string
	storeSock    string
	runner       string
	seed         *seed
	confs        []namedText // rendered peer configs, for the report
	fjordMetrics string
	fjordProcs   string // GOMAXPROCS fjord reported
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func run() (code int) {
	setFlags := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	if *flagQuick {
		if !setFlags["rounds"] {
			*flagRounds = 1
		}
		if !setFlags["d"] {
			*flagDur = 3 * time.Second
		}
		if !setFlags["conns"] {
			*flagConns = "1,64"
		}
		if !setFlags["warmup"] {
			*flagWarmup = time.Second
		}
		if !setFlags["doc"] {
			*flagDoc = ""
		}
		if !setFlags["plot"] {
			*flagPlot = ""
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if *flagRender != "" {
		return renderSaved(ctx, *flagRender)
	}

	b := &bench{log: os.Stderr}
	if err := b.parseFlags(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingress:", err)
		return 2
	}
	if err := b.checkTools(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingress:", err)
		return 2
	}
	var err error
	if b.tmp, err = os.MkdirTemp("", "fjord-bench-ingress-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingress:", err)
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "bench-ingress: panic: %v\n", r)
			code = 1
		}
		b.cleanup()
	}()

	res := &results{Start: time.Now().UTC(), Machine: machineInfo(b.fjord), Conns: b.conns, Rounds: *flagRounds,
		Dur: *flagDur, Threads: *flagThreads, ProxyCPUs: *flagProxyCPU, ClientCPUs: *flagClientCP, Backends: *flagBackends}
	if err := b.do(ctx, res); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintln(os.Stderr, "bench-ingress: FAILED:", err)
		return 1
	}
	res.End = time.Now().UTC()
	res.Machine.LoadEnd = benchkit.LoadAvg()
	res.Notes = b.notes
	res.Runner = b.runner
	if *flagJSON != "" {
		bs, err := json.MarshalIndent(res, "", " ")
		if err == nil {
			err = os.WriteFile(*flagJSON, bs, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-ingress: -json:", err)
			return 1
		}
		b.logf("wrote %s", *flagJSON)
	}
	return output(ctx, res, b.tmp)
}

// renderSaved rewrites the section and the plot from a saved -json file.
func renderSaved(ctx context.Context, path string) int {
	bs, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingress:", err)
		return 1
	}
	res := &results{}
	if err := json.Unmarshal(bs, res); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingress:", path, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "fjord-bench-ingress-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-ingress:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	return output(ctx, res, tmp)
}

// output writes the plot, prints the section and rewrites it in the document.
func output(ctx context.Context, res *results, tmp string) int {
	if *flagPlot != "" {
		if err := res.plot(ctx, *flagPlot, tmp); err != nil {
			fmt.Fprintln(os.Stderr, "bench-ingress: plot:", err)
			return 1
		}
		res.PlotPath = *flagPlot
		fmt.Fprintf(os.Stderr, "bench-ingress: wrote %s\n", *flagPlot)
	}
	report := res.markdown(*flagDoc)
	fmt.Println(report)
	if *flagDoc != "" {
		if err := benchkit.WriteSection(*flagDoc, "Ingress", "bench-ingress", report); err != nil {
			fmt.Fprintln(os.Stderr, "bench-ingress: writing document:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench-ingress: wrote %s\n", *flagDoc)
	}
	return 0
}

func (b *bench) parseFlags() error {
	var err error
	if b.fjord, err = filepath.Abs(*flagFjord); err == nil {
		_, err = os.Stat(b.fjord)
	}
	if err != nil {
		return fmt.Errorf("fjord binary: %v (run make build first)", err)
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	for _, s := range strings.Split(*flagConns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("-conns: bad count %q", s)
		}
		b.conns = append(b.conns, n)
	}
	slices.Sort(b.conns)
	b.conns = slices.Compact(b.conns)
	known := map[string]bool{"fjord": true, "nginx": true, "haproxy": true, "direct": true}
	for _, s := range strings.Split(*flagTargets, ",") {
		s = strings.TrimSpace(s)
		if !known[s] {
			return fmt.Errorf("-targets: unknown %q (fjord, nginx, haproxy, direct)", s)
		}
		b.targets = append(b.targets, &target{Name: s})
	}
	if *flagBackends < 1 || *flagBackends > 8 {
		return errors.New("-backends: 1 to 8")
	}
	if *flagRounds < 1 || *flagDur < time.Second || *flagThreads < 1 {
		return errors.New("-rounds ≥ 1, -d ≥ 1s, -threads ≥ 1")
	}
	for _, l := range []string{*flagProxyCPU, *flagClientCP} {
		if _, err := cpuCount(l); err != nil {
			return err
		}
	}
	// The whole run must fit in -timeout: wrk time plus about 30 s of setup.
	runs := *flagRounds * len(b.conns) * len(b.targets)
	est := time.Duration(runs)*(*flagDur+700*time.Millisecond) + time.Duration(len(b.targets))*(*flagWarmup+time.Second) + 30*time.Second
	est += *flagQuiet
	if *flagProfile {
		est += *flagDur + 10*time.Second
	}
	if est > *flagTimeout {
		return fmt.Errorf("%d wrk runs of %s need about %s, more than -timeout %s: lower -rounds, -d or -conns (or -quick)",
			runs, *flagDur, est.Round(time.Second), *flagTimeout)
	}
	fmt.Fprintf(os.Stderr, "bench-ingress: %d wrk runs of %s, about %s in all\n", runs, *flagDur, est.Round(time.Second))
	return nil
}

// checkTools installs the peers if they are missing and stops a system nginx
// or HAProxy that a package installation may have started.
func (b *bench) checkTools(ctx context.Context) error {
	need := map[string]string{"nginx": "nginx-light", "haproxy": "haproxy", "wrk": "wrk", "taskset": "util-linux"}
	if *flagStrace {
		need["strace"] = "strace"
	}
	if *flagPlot != "" {
		need["gnuplot"] = "gnuplot-nox"
	}
	var missing []string
	for tool, pkg := range need {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, pkg)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		if !*flagInstall || os.Geteuid() != 0 {
			return fmt.Errorf("missing packages %s: apt-get install -y %s", strings.Join(missing, ", "), strings.Join(missing, " "))
		}
		b.logf("installing %s", strings.Join(missing, " "))
		args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)
		if out, err := runCmd(ctx, 5*time.Minute, append(os.Environ(), "DEBIAN_FRONTEND=noninteractive"), "apt-get", args...); err != nil {
			// A stale package list is the usual cause; update once and retry.
			if _, uerr := runCmd(ctx, 3*time.Minute, nil, "apt-get", "update", "-qq"); uerr != nil {
				return fmt.Errorf("apt-get install: %v\n%s", err, tail(out, 20))
			}
			if out, err = runCmd(ctx, 5*time.Minute, append(os.Environ(), "DEBIAN_FRONTEND=noninteractive"), "apt-get", args...); err != nil {
				return fmt.Errorf("apt-get install: %v\n%s", err, tail(out, 20))
			}
		}
	}
	// Debian starts nginx and HAProxy right after installing them (unless a
	// policy-rc.d forbids it). This benchmark runs its own processes and wants
	// no system service bound to :80: stop them if they run.
	for _, svc := range []string{"nginx", "haproxy"} {
		pidFile := "/run/" + svc + ".pid"
		pid, err := readPid(pidFile)
		if err != nil || syscall.Kill(pid, 0) != nil {
			continue
		}
		b.logf("stopping the system %s service (pid %d from %s), started by its package installation", svc, pid, pidFile)
		if _, err := runCmd(ctx, 30*time.Second, nil, "service", svc, "stop"); err != nil {
			return fmt.Errorf("a system %s (pid %d) runs and `service %s stop` failed: %v", svc, pid, svc, err)
		}
		b.notes = append(b.notes, fmt.Sprintf("The system %s service was running (started by its package installation) and was stopped with `service %s stop`.", svc, svc))
	}
	return nil
}

func readPid(path string) (int, error) {
	bs, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(bs)))
}

func runCmd(ctx context.Context, limit time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(out, 10))
	}
	return out, nil
}

func tail(b []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func (b *bench) cleanup() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].stop(5 * time.Second)
	}
	if b.tmp != "" {
		if *flagKeep {
			b.logf("kept %s", b.tmp)
		} else {
			os.RemoveAll(b.tmp)
		}
	}
}
