// Command bench-services measures fjord's service proxy against real kube-proxy, in
// nftables and in iptables mode, on the same Services and EndpointSlices, at several
// numbers of services (default 10, 1,000, 10,000 and 30,000, each with 3 endpoints):
//
//   - first-packet round trip: TCP connect time from a client pod to random
//     ClusterIP:port, p50/p99, the three proxies interleaved batch by batch;
//   - time to program every service from scratch (the proxy starts with all objects
//     present and an empty ruleset; done when connects to the last-created service and
//     to a sample of others succeed), and time for one EndpointSlice change to reach
//     the kernel (until the new endpoint answers);
//   - the proxy's resident memory with all services.
//
// fjord runs as a one-node lab (`fjord lab up`: agent, client pod and echo pods on n1);
// kube-proxy runs against a real kube-apiserver (binaries from -kube-bin, built
// outside this module; the kube-proxy columns are skipped with a note if they are
// absent) in namespaces wired like the lab's pods. It rewrites its section of
// docs/benchmarks.md (between the bench-services markers) and docs/bench-services.png.
//
// It must run as root; traffic stays inside the namespaces it creates, every wait is
// bounded, and everything it creates is removed on exit, failure or signal.
//
//	make build && go run ./bench/services -fjord bin/fjord
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/kubebuild"

	"golang.org/x/sys/unix"
)

var (
	flagFjord        = flag.String("fjord", "bin/fjord", "the fjord binary (copied for the run, so a rebuild cannot change it mid-run)")
	flagKubeBin      = flag.String("kube-bin", "", "directory with kube-apiserver and kube-proxy (default: build them from k8s.io/kubernetes with internal/kubebuild, cached under -kube-cache)")
	flagKubeVersion  = flag.String("kube-version", kubebuild.DefaultVersion, "Kubernetes release to build kube-apiserver and kube-proxy from")
	flagKubeCache    = flag.String("kube-cache", "", "the Kubernetes build cache (default: $"+kubebuild.CacheEnv+", else ~/.cache/fjord; docs/kubernetes-build.md)")
	flagSizes        = flag.String("sizes", "10,1000,10000,30000", "numbers of services, ascending")
	flagRounds       = flag.Int("rounds", 3, "cold starts per proxy and size (one only when the first took longer than -repeat-limit)")
	flagRepeatLimit  = flag.Duration("repeat-limit", 60*time.Second, "a cold start longer than this is not repeated at that size")
	flagConnects     = flag.Int("connects", 1000, "measured connects per proxy and size")
	flagChanges      = flag.Int("changes", 4, "EndpointSlice change pairs per proxy and size (each pair: to a new endpoint and back)")
	flagSetupTimeout = flag.Duration("setup-timeout", 10*time.Minute, "longest wait for a proxy to program all services")
	flagChangeTO     = flag.Duration("change-timeout", 150*time.Second, "longest wait for one change to reach the kernel")
	flagBudget       = flag.Duration("budget", 42*time.Minute, "soft limit: no new size (or repeated cold start) starts after this")
	flagTimeout      = flag.Duration("timeout", 75*time.Minute, "hard limit for the whole run")
	flagProxyConfig  = flag.String("proxy-config", "", "KubeProxyConfiguration for fjord's agents (default: none, i.e. kube-proxy's defaults)")
	flagDoc          = flag.String("doc", "docs/benchmarks.md", "document whose bench-services section is rewritten (\"\" = none)")
	flagPlot         = flag.String("plot", "docs/bench-services.png", "PNG plot of connect time against services (\"\" = none)")
	flagRaw          = flag.String("raw", "", "write every sample as JSON to this file (default: none)")
	flagLogs         = flag.String("logs", "", "copy the proxies' logs here before cleaning up (default: not kept)")
	flagLabName      = flag.String("lab", "bsvc", "fjord lab name")
	flagSubnet       = flag.String("subnet", "198.18.60.0/24", "fjord lab underlay subnet")
	flagSeed         = flag.Uint64("seed", 1, "seed for the random choice of services")
	flagIdle         = flag.Duration("idle", 60*time.Second, "window for the idle CPU of each proxy at 10,000 services and more (a third of it below)")
	flagSettle       = flag.Duration("settle", 20*time.Second, "pause between the last cold start and the idle window, so no proxy is still recovering from being frozen")
)

const (
	beginMark = "<!-- bench-services:begin -->"
	endMark   = "<!-- bench-services:end -->"
)

var echoNames = []string{"a", "b", "c", "d"} // a, b, c serve every service; d is the changed-to endpoint

// system is one proxy under test.
type system struct {
	Key, Name string
	worker    func() *nsWorker
	stop      func() error
	flush     func(context.Context) error
	start     func(context.Context) (int, error)
	pid       func() int
	setSlice  func(context.Context, int, []netip.Addr) error
	logPath   func() string
	backends  func(...string) []netip.Addr // by echo name
	Skipped   string                       // why it is not measured at all
	Res       map[int]*sizeResult
	broken    string // a failure that ends its measurements at larger sizes too
}

type sizeResult struct {
	Cold, ColdCPU     []float64 // s
	ColdPhase         []float64 // s from process start to its log mark (see logMark)
	ColdFail          string
	Connect           []float64 // µs
	ConnectFails      int
	ConnectErr        string
	Change, ChangeAck []float64 // ms
	ChangeFails       int
	ChangeErr         string
	ChangesCapped     bool           // fewer changes measured: they were too slow
	RSS, HWM          float64        // MiB
	IdleCPU           float64        // CPU seconds per second, all services programmed, nothing changing
	IdleWindow        float64        // s
	IdleChildren      map[string]int // command lines of children seen in the idle window, by samples
	IdleSamples       int
	Skipped           string // not measured at this size, and why
}

func (s *system) res(n int) *sizeResult {
	if s.Res[n] == nil {
		s.Res[n] = &sizeResult{}
	}
	return s.Res[n]
}

func (s *system) usable(n int) bool {
	return s.Skipped == "" && s.Res[n] != nil && s.Res[n].Skipped == "" && s.Res[n].ColdFail == "" && len(s.Res[n].Cold) > 0
}

// bench holds the run's state, so cleanup knows what to undo.
type bench struct {
	fjord   string // absolute path of the run's copy
	self    string // this program's copy: the backends run it with -serve
	repo    string
	tmp     string
	log     io.Writer
	start   time.Time
	mu      sync.Mutex
	procs   []*benchkit.Proc
	fj      *fjordSide
	kube    *kubeSide
	systems []*system
	have    int // services written to both stores
	res     *results
	frozen  map[int]bool // process groups stopped with SIGSTOP, to continue on cleanup
}

func main() {
	flag.Parse()
	if *flagServe != "" {
		os.Exit(serve(*flagServe, *flagServePod))
	}
	os.Exit(run())
}

func run() (code int) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-services: must run as root (it creates network namespaces)")
		return 2
	}
	sizes, err := parseSizes(*flagSizes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-services: -sizes:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	b := &bench{log: os.Stderr, start: time.Now()}
	src, err := filepath.Abs(*flagFjord)
	if err == nil {
		_, err = os.Stat(src)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-services: fjord binary: %v (run make build first)\n", err)
		return 2
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "bench-services: %s not found (apt-get install iproute2 nftables)\n", tool)
			return 2
		}
	}
	// One run at a time: a run removes what an earlier, killed run left behind, which
	// must never be a live run's namespaces and processes.
	lock, err := os.OpenFile("/run/fjord-bench-services.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-services: another run is active (lock /run/fjord-bench-services.lock): %v\n", err)
		return 2
	}
	defer func() { _ = os.Remove(lock.Name()); _ = lock.Close() }()
	b.repo = filepath.Dir(filepath.Dir(src))
	if b.tmp, err = os.MkdirTemp("", "fjord-bench-services-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench-services:", err)
		return 1
	}
	// The lab runs this copy (and the fjord-cni next to it): someone else's `make
	// build` cannot swap binaries mid-run.
	b.fjord = filepath.Join(b.tmp, "bin", "fjord")
	if err := copyFile(src, b.fjord); err == nil {
		err = copyFile(filepath.Join(filepath.Dir(src), "fjord-cni"), filepath.Join(b.tmp, "bin", "fjord-cni"))
	}
	if err == nil {
		// This program is also the backends' server (-serve).
		var self string
		if self, err = os.Executable(); err == nil {
			b.self = filepath.Join(b.tmp, "bin", "bench-services")
			err = copyFile(self, b.self)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-services: copying the binaries:", err)
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "bench-services: panic: %v\n", r)
			code = 1
		}
		b.cleanup()
	}()
	b.res = &results{Start: time.Now().UTC(), Machine: machineInfo(b.repo), Sizes: sizes}
	if err := b.do(ctx, sizes); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintln(os.Stderr, "bench-services: FAILED:", err)
		return 1
	}
	b.res.End = time.Now().UTC()
	b.res.Machine.LoadEnd = benchkit.LoadAvg()
	b.res.Systems = b.systems
	b.res.ApplyNote, b.res.MaxBatch = b.fj.tooLarge, b.fj.maxBatch
	if *flagPlot != "" {
		if err := b.plot(ctx, *flagPlot); err != nil {
			b.logf("WARNING: no plot: %v", err)
			b.res.PlotNote = err.Error()
		} else {
			b.res.Plot = *flagPlot
		}
	}
	if *flagRaw != "" {
		if data, err := json.MarshalIndent(b.res, "", " "); err != nil || os.WriteFile(*flagRaw, data, 0o644) != nil {
			b.logf("WARNING: -raw %s not written", *flagRaw)
		}
	}
	report := b.res.markdown()
	fmt.Println(report)
	if *flagDoc != "" {
		if err := benchkit.WriteSection(*flagDoc, "Services", "bench-services", report); err != nil {
			fmt.Fprintln(os.Stderr, "bench-services: writing document:", err)
			return 1
		}
		b.logf("wrote %s", *flagDoc)
	}
	return 0
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n < 1 || n > 60000 {
			return nil, fmt.Errorf("%q: want numbers from 1 to 60000", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, errors.New("sizes must be ascending")
		}
		out = append(out, n)
	}
	return out, nil
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "[%s %5.0fs] "+format+"\n", append([]any{time.Now().Format("15:04:05"), time.Since(b.start).Seconds()}, a...)...)
}

func (b *bench) do(ctx context.Context, sizes []int) error {
	b.removeLeftovers()
	b.fj = &fjordSide{b: b, name: *flagLabName, subnet: *flagSubnet}
	if err := b.fj.up(ctx); err != nil {
		return fmt.Errorf("fjord lab: %w", err)
	}
	fj := b.fj
	b.systems = append(b.systems, &system{
		Key: "fjord", Name: "fjord",
		worker: func() *nsWorker { return fj.worker },
		stop:   fj.stopAgent, flush: fj.flush, start: fj.startAgent, pid: fj.agentPID,
		setSlice: func(ctx context.Context, i int, eps []netip.Addr) error {
			return fj.apply(ctx, [][]byte{mustJSON(sliceJSON(i, eps))})
		},
		logPath: fj.agentLog,
		backends: func(names ...string) []netip.Addr {
			var ps []pod
			for _, n := range names {
				ps = append(ps, fj.echo[n])
			}
			return addrs(ps...)
		},
		Res: map[int]*sizeResult{},
	})
	kubeBin, err := kubeBinaries(ctx, b.logf)
	why := ""
	if err != nil {
		why = "kube-apiserver and kube-proxy could not be built: " + err.Error()
	} else {
		why = kubeAvailable(kubeBin)
	}
	if why != "" {
		b.logf("kube-proxy columns skipped: %s", why)
		b.res.KubeNote = why
		for _, key := range []string{"nft", "ipt"} {
			b.systems = append(b.systems, &system{Key: key, Name: kubeName(key), Skipped: why, Res: map[int]*sizeResult{}})
		}
	} else {
		b.kube = &kubeSide{b: b, bin: kubeBin}
		if err := b.kube.up(ctx, fj); err != nil {
			return fmt.Errorf("kube side: %w", err)
		}
		b.res.KubeVersion = b.kube.version
		for _, n := range b.kube.nodes {
			n := n
			b.systems = append(b.systems, &system{
				Key: n.Key, Name: kubeName(n.Key),
				worker: func() *nsWorker { return n.worker },
				stop:   n.stopProxy, flush: n.flush,
				start:    func(context.Context) (int, error) { return n.startProxy() },
				pid:      n.proxyPID,
				setSlice: b.kube.setSlice,
				logPath:  func() string { return filepath.Join(b.tmp, "kube-proxy-"+n.Key+".log") },
				backends: func(names ...string) []netip.Addr { return b.systems[0].backends(names...) },
				Res:      map[int]*sizeResult{},
			})
		}
	}
	for si, n := range sizes {
		if si > 0 && time.Since(b.start) > *flagBudget {
			b.logf("budget of %s spent: sizes from %d on are skipped", *flagBudget, n)
			b.res.Skipped = append(b.res.Skipped, sizes[si:]...)
			b.res.Sizes = sizes[:si]
			break
		}
		if err := b.measureSize(ctx, n); err != nil {
			return fmt.Errorf("%d services: %w", n, err)
		}
	}
	return nil
}

// kubeBinaries returns a directory with kube-apiserver and kube-proxy: the
// -kube-bin flag's, or the shared Kubernetes build cache's (built there first
// if needed: minutes and gigabytes of Go build cache the first time).
func kubeBinaries(ctx context.Context, logf func(string, ...any)) (string, error) {
	if *flagKubeBin != "" {
		return *flagKubeBin, nil
	}
	bins, err := kubebuild.Ensure(ctx, kubebuild.Config{Version: *flagKubeVersion, CacheDir: *flagKubeCache, Logf: logf},
		kubebuild.KubeAPIServer, kubebuild.KubeProxy)
	return bins.Dir, err
}

func kubeName(key string) string {
	if key == "nft" {
		return "kube-proxy nftables"
	}
	return "kube-proxy iptables"
}

func (b *bench) active() []*system {
	var out []*system
	for _, s := range b.systems {
		if s.Skipped == "" {
			out = append(out, s)
		}
	}
	return out
}

func rotate[T any](v []T, r int) []T {
	if len(v) == 0 {
		return nil
	}
	r %= len(v)
	return append(slices.Clone(v[r:]), v[:r]...)
}

// measureSize grows both stores to n services, then measures every proxy at n.
func (b *bench) measureSize(ctx context.Context, n int) error {
	for _, s := range b.active() {
		if s.broken != "" {
			s.res(n).Skipped = s.broken
		}
		if err := s.stop(); err != nil {
			return err
		}
	}
	if err := b.grow(ctx, n); err != nil {
		return err
	}
	// Cold starts, the proxies in turn; the order rotates with the round.
	for r := 0; r < *flagRounds; r++ {
		for _, s := range rotate(b.active(), r) {
			res := s.res(n)
			if res.Skipped != "" || res.ColdFail != "" {
				continue
			}
			if r > 0 {
				if len(res.Cold) == 0 || res.Cold[0] > flagRepeatLimit.Seconds() {
					continue
				}
				if time.Since(b.start)+time.Duration(2*res.Cold[0]*float64(time.Second)) > *flagBudget {
					b.logf("%s: no repeated cold start at %d services (the time budget is nearly spent)", s.Name, n)
					continue
				}
				// Stop it and empty its ruleset before starting again.
				if err := s.stop(); err != nil {
					return err
				}
			}
			if err := b.coldStart(ctx, s, n); err != nil {
				return err
			}
		}
	}
	// A proxy frozen while another programmed may come back with work to do (fjord's
	// agent renews its node lease and re-runs the endpoints election); the idle window
	// is about steady state, so it starts once every proxy has run unfrozen a while.
	time.Sleep(*flagSettle)
	if err := b.idle(ctx, n); err != nil {
		return err
	}
	if err := b.connects(ctx, n); err != nil {
		return err
	}
	if err := b.changes(ctx, n); err != nil {
		return err
	}
	for _, s := range b.active() {
		if !s.usable(n) {
			continue
		}
		res := s.res(n)
		pid := s.pid()
		res.RSS, res.HWM = procStatus(pid, "VmRSS"), procStatus(pid, "VmHWM")
		b.logf("%-20s n=%-6d RSS %.1f MiB (peak %.1f MiB)", s.Name, n, res.RSS, res.HWM)
	}
	return nil
}

// grow writes services [have, n) and their slices to fjord's store and to
// kube-apiserver, the two in parallel. The proxies are stopped meanwhile.
func (b *bench) grow(ctx context.Context, n int) error {
	if n <= b.have {
		return nil
	}
	abc := b.systems[0].backends("a", "b", "c")
	var fjDocs [][]byte
	var kDocs []kubeDoc
	for i := b.have; i < n; i++ {
		svc, sl := mustJSON(serviceJSON(i)), mustJSON(sliceJSON(i, abc))
		fjDocs = append(fjDocs, svc, sl)
		kDocs = append(kDocs,
			kubeDoc{"/api/v1/namespaces/default/services", svc},
			kubeDoc{"/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", sl})
	}
	b.logf("writing services %d..%d (and their EndpointSlices) to both stores", b.have, n-1)
	var wg sync.WaitGroup
	var fErr, kErr error
	var fDur, kDur time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.Now()
		fErr = b.fj.apply(ctx, fjDocs)
		fDur = time.Since(t)
	}()
	if b.kube != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			kErr = b.kube.create(ctx, kDocs)
			kDur = time.Since(t)
		}()
	}
	wg.Wait()
	if err := errors.Join(fErr, kErr); err != nil {
		return err
	}
	b.logf("written: fjord store %.1f s, kube-apiserver %.1f s (%d objects each)", fDur.Seconds(), kDur.Seconds(), len(fjDocs))
	b.res.Writes = append(b.res.Writes, writeRow{From: b.have, To: n, Objects: len(fjDocs), Fjord: fDur.Seconds(), Kube: kDur.Seconds()})
	b.have = n
	return nil
}

// removeLeftovers clears what a killed earlier run may have left: its processes
// (found by this benchmark's marker), its namespaces, and its lab.
func (b *bench) removeLeftovers() {
	forEachProc(func(pid int, env []string) {
		if slices.Contains(env, markerEnv+"=1") {
			b.logf("stopping leftover process %d from an earlier run", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), kubePrefix+"-") {
			b.logf("removing leftover namespace %s", e.Name())
			_, _ = benchkit.RunCmd(context.Background(), 30*time.Second, os.Environ(), "ip", "netns", "del", e.Name())
		}
	}
}

// cleanup undoes everything, on success, failure, panic and signal.
func (b *bench) cleanup() {
	b.mu.Lock()
	for g := range b.frozen {
		_ = syscall.Kill(-g, syscall.SIGCONT)
	}
	b.frozen = nil
	b.mu.Unlock()
	if *flagLogs != "" {
		b.keepLogs(*flagLogs)
	}
	if b.kube != nil {
		b.kube.down()
	}
	b.mu.Lock()
	procs := slices.Clone(b.procs)
	b.mu.Unlock()
	for _, p := range procs {
		p.Stop(3 * time.Second)
	}
	if b.fj != nil && (b.fj.labIsUp || b.fj.present()) {
		b.fj.down()
	}
	_ = os.RemoveAll(b.tmp)
	if b.fj != nil && b.fj.present() {
		b.logf("WARNING: lab %s still present after cleanup; run: fjord lab down --name %s", b.fj.name, b.fj.name)
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), kubePrefix+"-") {
			b.logf("WARNING: namespace %s still present after cleanup", e.Name())
		}
	}
	b.logf("cleaned up")
}

func (b *bench) keepLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.logf("WARNING: -logs: %v", err)
		return
	}
	var files []string
	if m, _ := filepath.Glob(filepath.Join(b.tmp, "*.log")); m != nil {
		files = append(files, m...)
	}
	if b.fj != nil {
		if m, _ := filepath.Glob(filepath.Join(b.fj.stateDir(), "logs", "*.log")); m != nil {
			files = append(files, m...)
		}
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(f, runRoot) {
			name = "lab-" + name
		}
		if err := copyFile(f, filepath.Join(dir, name)); err != nil {
			b.logf("WARNING: keeping %s: %v", f, err)
		}
	}
	b.logf("logs kept in %s", dir)
}
