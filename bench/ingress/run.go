package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (b *bench) do(ctx context.Context, res *results) error {
	var err error
	if b.seed, err = loadSeed(*flagSeed); err != nil {
		return err
	}
	res.Seed = b.seed
	if b.runner, err = b.pickRunner(); err != nil {
		return err
	}
	if err := b.startBackends(ctx); err != nil {
		return err
	}
	for _, t := range b.targets {
		b.logf("starting %s", t.Name)
		switch t.Name {
		case "fjord":
			err = b.startFjord(ctx, t, b.seed)
		case "nginx":
			err = b.startNginx(ctx, t, b.seed)
		case "haproxy":
			err = b.startHAProxy(ctx, t, b.seed)
		case "direct":
			t.URL = fmt.Sprintf("http://%s:%d/", b.backendIPs[0], b.backendPort)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	res.Objects = b.objectsYAML()
	// Every proxy reaches every backend: fresh connections, counted by the
	// backend's name in the body.
	for _, t := range b.targets {
		if t.Name == "direct" {
			continue
		}
		got, err := spread(ctx, t.URL, host, 12*len(b.backendIPs))
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		if len(got) != len(b.backendIPs) {
			return fmt.Errorf("%s reached backends %v, want all %d", t.Name, got, len(b.backendIPs))
		}
		b.logf("%s spreads over the backends: %v", t.Name, got)
	}
	b.describeWorkers()
	for _, t := range b.targets {
		if t.AccessLog != "" {
			res.LogSample = append(res.LogSample, namedText{t.label(), firstLine(t.AccessLog)})
		}
	}

	b.waitQuiet(ctx)

	// Warm-up: pools filled, caches and the Go heap grown; discarded.
	if *flagWarmup >= time.Second {
		for _, t := range b.targets {
			s, err := b.runWrk(ctx, t, 16, *flagWarmup)
			if err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			t.Warm = s
		}
	}
	// Rounds: at each connection count every target once; the order rotates
	// and reverses every other round, so no target always follows another.
	// With two targets the rotation alone alternates them (reversing too
	// would undo it, and one target would always run first).
	for r := 0; r < *flagRounds; r++ {
		for ci, c := range b.conns {
			order := slices.Clone(b.targets)
			k := (r + ci) % len(order)
			order = append(order[k:], order[:k]...)
			if r%2 == 1 && len(order) > 2 {
				slices.Reverse(order)
			}
			for _, t := range order {
				s, err := b.runWrk(ctx, t, c, *flagDur)
				if err != nil {
					return fmt.Errorf("round %d, -c %d: %w", r+1, c, err)
				}
				s.Round = r + 1
				t.Samples = append(t.Samples, s)
				b.logf("round %d/%d  -c %-4d %-8s %9.0f req/s  p50 %-9s p99 %-9s errors %d  cpu %.1f µs/req  log %d/%d  others %.2f CPU %s",
					r+1, *flagRounds, c, t.Name, s.RPS, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.errors(), s.cpuPerReq(), s.LogLines, s.Requests, s.Others, s.OthersTop)
			}
		}
	}
	res.Targets = b.targets

	// What the proxies themselves say about the run.
	if t := b.target("fjord"); t != nil {
		res.FjordMetrics = scrapeMetrics(ctx, b.fjordMetrics)
		res.FjordLog = grepLog(t.proc.logf, `level=(WARN|ERROR)`, 10)
	}
	if b.target("nginx") != nil {
		res.NginxLog = grepLog(filepath.Join(b.tmp, "nginx-error.log"), `\[(warn|error|crit|alert|emerg)\]`, 10)
	}
	if t := b.target("haproxy"); t != nil {
		res.HAProxyLog = grepLog(t.proc.logf, `.`, 10)
	}
	// System calls per request, counted by strace outside the measured runs
	// (tracing slows a proxy down many times; only the counts are used).
	if *flagStrace {
		for _, t := range b.targets {
			if t.proc == nil {
				continue
			}
			sc, err := b.straceCounts(ctx, t)
			if err != nil {
				b.logf("strace %s: %v (skipped)", t.Name, err)
				b.notes = append(b.notes, fmt.Sprintf("Counting %s's system calls with strace failed: %v.", t.label(), err))
				continue
			}
			res.Syscalls = append(res.Syscalls, sc)
			b.logf("strace %s: %.1f system calls per request", t.Name, sc.PerReq)
		}
	}
	if *flagProfile && b.target("fjord") != nil {
		if err := b.profile(ctx, res); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	res.Confs = b.confs
	return nil
}

// pickRunner decides what runs fjord's ingress.
func (b *bench) pickRunner() (string, error) {
	// An unknown command with --help still exits 0: look for the command's own flag.
	help, _ := exec.Command(b.fjord, "ingress", "--help").CombinedOutput()
	has := strings.Contains(string(help), "--http-addr")
	switch *flagRunner {
	case "fjord":
		if !has {
			return "", fmt.Errorf("%s has no ingress command (rebuild it, or use -runner self)", b.fjord)
		}
		return "fjord", nil
	case "self":
		return "self", nil
	case "auto":
		if has {
			return "fjord", nil
		}
		b.logf("%s has no ingress command: running server.Run from this program (same package, same code)", b.fjord)
		b.notes = append(b.notes, fmt.Sprintf("`%s` had no `ingress` command yet, so fjord's ingress ran as this program calling `server.Run` (what `fjord ingress` runs: the same package, built from the same tree).", *flagFjord))
		return "self", nil
	}
	return "", fmt.Errorf("-runner %q: fjord, self or auto", *flagRunner)
}

// describeWorkers records how much parallelism each proxy took from
// worker-processes auto on the proxy CPU set.
func (b *bench) describeWorkers() {
	for _, t := range b.targets {
		if t.proc == nil {
			continue
		}
		n := groupUsage(t.proc.pid()).Procs
		switch t.Name {
		case "fjord":
			m := regexp.MustCompile(`gomaxprocs=(\d+)`).FindStringSubmatch(readFile(t.proc.logf))
			if m != nil {
				t.Info = "GOMAXPROCS " + m[1]
			} else {
				t.Info = "GOMAXPROCS ?"
			}
			t.Info += fmt.Sprintf(" (%d OS threads)", threadsOf(t.proc.pid()))
		case "nginx":
			t.Info = fmt.Sprintf("%d worker process(es) and the master", n-1)
		case "haproxy":
			t.Info = fmt.Sprintf("nbthread %d (%d OS threads)", mustCount(*flagProxyCPU), threadsOf(t.proc.pid()))
		}
		b.logf("%s: %s", t.Name, t.Info)
	}
}

func readFile(p string) string { bs, _ := os.ReadFile(p); return string(bs) }

func firstLine(p string) string {
	s, _, _ := strings.Cut(readFile(p), "\n")
	return s
}

// grepLog returns up to n lines of a log matching re, and how many matched.
func grepLog(path, re string, n int) logExcerpt {
	rx := regexp.MustCompile(re)
	var ex logExcerpt
	for _, l := range strings.Split(readFile(path), "\n") {
		if l == "" || !rx.MatchString(l) {
			continue
		}
		ex.Count++
		if len(ex.Lines) < n {
			ex.Lines = append(ex.Lines, l)
		}
	}
	return ex
}

type logExcerpt struct {
	Count int
	Lines []string
}

// scrapeMetrics returns fjord's own counters: requests by status, upstream
// connections new and reused, retries.
func scrapeMetrics(ctx context.Context, url string) []string {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return []string{"(metrics: " + err.Error() + ")"}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		for _, p := range []string{"fjord_ingress_requests_total", "fjord_ingress_upstream_connections_total",
			"fjord_ingress_upstream_retries_total", "fjord_ingress_upstream_stale_connection_retries_total"} {
			if strings.HasPrefix(l, p+"{") || strings.HasPrefix(l, p+" ") {
				out = append(out, l)
			}
		}
	}
	return out
}

// profile runs a second fjord ingress (this program's server.Run, with a
// pprof listener) on the proxy CPUs and takes a CPU profile under wrk -c 64.
func (b *bench) profile(ctx context.Context, res *results) error {
	ports := make([]int, 4)
	for i := range ports {
		var err error
		if ports[i], err = freePort("127.0.0.1"); err != nil {
			return err
		}
	}
	a := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	// The benchmark's fjord is idle now; stop it so the two do not share the CPU.
	if t := b.target("fjord"); t != nil && t.proc != nil {
		t.proc.stop(5 * time.Second)
	}
	p, err := b.start("fjord-profiled", *flagProxyCPU, os.Environ(), "", b.self, "-role", "ingress", "-store", "unix://"+b.storeSock,
		"-http-addr", a(0), "-https-addr", a(1), "-metrics-addr", a(2), "-pprof", a(3), "-access-log", filepath.Join(b.tmp, "fjord-profiled-access.log"))
	if err != nil {
		return err
	}
	t := &target{Name: "fjord", URL: "http://" + a(0) + "/", proc: p, AccessLog: filepath.Join(b.tmp, "fjord-profiled-access.log")}
	if err := waitHTTP(ctx, p, "http://"+a(2)+"/healthz", "", 200, 20*time.Second); err != nil {
		return err
	}
	if err := waitHTTP(ctx, p, t.URL, host, 200, 10*time.Second); err != nil {
		return err
	}
	if _, err := b.runWrk(ctx, t, 16, 2*time.Second); err != nil {
		return err
	}
	secs := int(flagDur.Seconds())
	type got struct {
		body []byte
		err  error
	}
	ch := make(chan got, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a(3), secs), nil)
		resp, err := (&http.Client{Timeout: time.Duration(secs+20) * time.Second}).Do(req)
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		ch <- got{body, err}
	}()
	time.Sleep(200 * time.Millisecond)
	s, err := b.runWrk(ctx, t, 64, *flagDur)
	if err != nil {
		return err
	}
	g := <-ch
	if g.err != nil {
		return g.err
	}
	prof := filepath.Join(b.tmp, "fjord-cpu.pprof")
	if *flagProfOut != "" {
		prof = *flagProfOut
	}
	if err := os.WriteFile(prof, g.body, 0o644); err != nil {
		return err
	}
	b.logf("CPU profile %s (%d bytes; wrk -c 64: %.0f req/s)", prof, len(g.body), s.RPS)
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", b.self, prof).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v", err)
	}
	res.Profile = string(out)
	if out, err = exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", b.self, prof).Output(); err == nil {
		all := strings.Split(string(out), "\n")
		res.ProfileCum = strings.Join(all[:min(len(all), 52)], "\n") + "\n"
		res.ProfileShares = profileShares(all)
	}
	res.ProfileRPS = s.RPS
	return nil
}

// sysCount is strace -c's summary for one proxy, per request.
type sysCount struct {
	Target   string
	Requests int64
	PerReq   float64
	Calls    []namedRate // by count, most first
}

type namedRate struct {
	Name string
	Rate float64
}

// straceCounts attaches strace -c -f to every process of t, drives it with
// wrk -c 64 for a few seconds and divides the calls by the requests the
// proxy logged meanwhile.
func (b *bench) straceCounts(ctx context.Context, t *target) (*sysCount, error) {
	if _, err := exec.LookPath("strace"); err != nil {
		return nil, errors.New("strace not installed")
	}
	if _, err := countAndTruncate(t.AccessLog); err != nil {
		return nil, err
	}
	args := []string{"-c", "-f", "-q"}
	for _, pid := range groupPids(t.proc.pid()) {
		args = append(args, "-p", strconv.Itoa(pid))
	}
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", *flagClientCP, "strace"}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // attached
	_, werr := b.runWrkOnly(ctx, t, 64, 3*time.Second)
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if werr != nil {
		return nil, werr
	}
	// strace ends by re-raising the SIGINT it stopped on: err is expected;
	// the summary below is what counts.
	_ = err
	reqs, err := countAndTruncate(t.AccessLog)
	if err != nil {
		return nil, err
	}
	if reqs == 0 {
		return nil, errors.New("no requests while tracing")
	}
	sc := &sysCount{Target: t.label(), Requests: reqs}
	for _, l := range strings.Split(out.String(), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] == "%" || strings.HasPrefix(f[0], "-") {
			continue
		}
		calls, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		name := f[len(f)-1]
		if name == "total" {
			sc.PerReq = calls / float64(reqs)
			continue
		}
		sc.Calls = append(sc.Calls, namedRate{name, calls / float64(reqs)})
	}
	if sc.PerReq == 0 {
		return nil, fmt.Errorf("no strace summary: %s", tail([]byte(out.String()), 5))
	}
	slices.SortFunc(sc.Calls, func(a, b namedRate) int { return cmp.Compare(b.Rate, a.Rate) })
	return sc, nil
}

// profileShares picks well-known functions out of a pprof -top -cum listing:
// where the proxy's CPU goes, in a few buckets.
func profileShares(lines []string) []namedRate {
	cum := map[string]float64{}
	flat := map[string]float64{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		name := strings.Join(f[5:], " ")
		name = strings.TrimSuffix(name, " (inline)")
		c, _ := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		fl, _ := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum[name], flat[name] = c, fl
	}
	buckets := []struct {
		label, fn string
		useFlat   bool
	}{
		{"system calls (flat time in the syscall stub: socket and log writes, reads)", "internal/runtime/syscall/linux.Syscall6", true},
		{"socket writes (net.(*netFD).Write)", "net.(*netFD).Write", false},
		{"socket reads (net.(*netFD).Read)", "net.(*netFD).Read", false},
		{"memory allocation (runtime.mallocgc)", "runtime.mallocgc", false},
		{"garbage collection (runtime.gcBgMarkWorker)", "runtime.gcBgMarkWorker", false},
		{"goroutine scheduling (runtime.schedule)", "runtime.schedule", false},
		{"network poller (runtime.netpoll)", "runtime.netpoll", false},
		// The hand-written HTTP/1.1 path.
		{"reading and parsing request heads (proxy.readHead)", "github.com/fjord-net/fjord/internal/ingress/proxy.readHead", false},
		{"writing the upstream request (proxy.(*h1conn).sendRequest)", "github.com/fjord-net/fjord/internal/ingress/proxy.(*h1conn).sendRequest", false},
		{"relaying the response (proxy.(*h1conn).relay)", "github.com/fjord-net/fjord/internal/ingress/proxy.(*h1conn).relay", false},
		{"access log and metrics (proxy.(*Proxy).record)", "github.com/fjord-net/fjord/internal/ingress/proxy.(*Proxy).record", false},
		{"of which log-format rendering (nginxconf.(*LogFormat).Append)", "github.com/fjord-net/fjord/internal/ingress/nginxconf.(*LogFormat).Append", false},
		// The net/http path (HTTP/2, or proxy.Options.NetHTTPOnly).
		{"httputil.ReverseProxy.ServeHTTP", "net/http/httputil.(*ReverseProxy).ServeHTTP", false},
		{"upstream transport writeLoop", "net/http.(*persistConn).writeLoop", false},
		{"upstream transport readLoop", "net/http.(*persistConn).readLoop", false},
	}
	var out []namedRate
	for _, bk := range buckets {
		m := cum
		if bk.useFlat {
			m = flat
		}
		if v, ok := m[bk.fn]; ok {
			out = append(out, namedRate{bk.label, v})
		}
	}
	return out
}

// waitQuiet waits up to -quiet-wait for the rest of the machine to calm
// down: other processes below 0.2 CPU over 3 s.
func (b *bench) waitQuiet(ctx context.Context) {
	if *flagQuiet <= 0 {
		return
	}
	deadline := time.Now().Add(*flagQuiet)
	for first := true; ; first = false {
		a, t0 := b.othersSnapshot(), time.Now()
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		d, top := othersDelta(a, b.othersSnapshot())
		load := d.Seconds() / time.Since(t0).Seconds()
		if load < 0.2 {
			if !first {
				b.logf("the machine is quiet now (%.2f CPU used by others)", load)
			}
			return
		}
		if time.Now().After(deadline) {
			b.logf("other processes still use %.2f CPU (%s); measuring anyway", load, top)
			return
		}
		if first {
			b.logf("other processes use %.2f CPU (%s): waiting up to %s for them to finish", load, top, *flagQuiet)
		}
	}
}
