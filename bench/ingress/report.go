package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

type machine struct {
	CPUs                            int
	CPU, Kernel, Debian, Go, Commit string
	Nginx, HAProxy, Wrk             string
	LoadStart, LoadEnd              string
}

type results struct {
	Start, End            time.Time
	Machine               machine
	Conns                 []int
	Rounds, Threads       int
	Dur                   time.Duration
	ProxyCPUs, ClientCPUs string
	Backends              int
	Runner                string
	Notes                 []string
	PlotPath              string
	Seed                  *seed
	Objects               string
	Targets               []*target
	LogSample             []namedText
	FjordMetrics          []string
	FjordLog, NginxLog    logExcerpt
	HAProxyLog            logExcerpt
	Syscalls              []*sysCount
	ProfileShares         []namedRate
	Profile, ProfileCum   string
	ProfileRPS            float64
	Confs                 []namedText
}

func machineInfo(fjord string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: benchkit.LoadAvg()}
	m.CPU, m.Kernel = benchkit.CPUModel(), benchkit.KernelRelease()
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		m.Debian = "Debian " + strings.TrimSpace(string(b))
	}
	ver := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		l, _, _ := strings.Cut(string(out), "\n")
		return strings.TrimSpace(l)
	}
	m.Nginx = strings.TrimPrefix(ver("nginx", "-v"), "nginx version: ")
	if f := strings.Fields(ver("haproxy", "-v")); len(f) >= 3 {
		m.HAProxy = "HAProxy " + f[2]
	}
	if f := strings.Fields(ver("wrk", "-v")); len(f) >= 2 {
		m.Wrk = "wrk " + f[1]
	}
	m.Commit = benchkit.Commit(filepath.Dir(filepath.Dir(fjord)))
	return m
}

// latMs is a latency in ms, NaN for a run that completed no request (it has
// no latency distribution; its 0 req/s still counts for throughput).
func latMs(s *sample, d time.Duration) float64 {
	if s.Requests == 0 {
		return math.NaN()
	}
	return float64(d) / 1e6
}

// stat collects one field over a target's samples at one connection count:
// the runs that other work on the machine left alone (see disturbed) if
// there are at least two, else all of them.
func (t *target) stat(c int, f func(*sample) float64) []float64 {
	v, _ := t.statN(c, f)
	return v
}

// statN is stat, and whether it had to fall back to disturbed runs.
func (t *target) statN(c int, f func(*sample) float64) (v []float64, fellBack bool) {
	var quiet, all []float64
	for _, s := range t.Samples {
		x := f(s)
		if s.Conns != c || math.IsNaN(x) {
			continue
		}
		all = append(all, x)
		if s.Others <= disturbed {
			quiet = append(quiet, x)
		}
	}
	if len(quiet) >= 2 {
		return quiet, false
	}
	return all, len(quiet) < len(all)
}

func (t *target) med(c int, f func(*sample) float64) float64 { return benchkit.Median(t.stat(c, f)) }

var (
	fRPS = func(s *sample) float64 { return s.RPS }
	fP50 = func(s *sample) float64 { return latMs(s, s.P50) }
	fP90 = func(s *sample) float64 { return latMs(s, s.P90) }
	fP99 = func(s *sample) float64 { return latMs(s, s.P99) }
	fCPU = func(s *sample) float64 { return s.cpuPerReq() }
	fSys = func(s *sample) float64 { return s.perReq(s.Sys.Microseconds()) }
	fRSS = func(s *sample) float64 { return float64(s.RSS) / (1 << 20) }
)

func (r *results) target(name string) *target {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func fmtMs(ms float64) string {
	switch {
	case math.IsNaN(ms):
		return "—"
	case ms < 1:
		return fmt.Sprintf("%.3f", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	}
	return fmt.Sprintf("%.1f", ms)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// markdown renders the section body that goes between the markers.
func (r *results) markdown(doc string) string {
	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	m := r.Machine
	f, n, h, d := r.target("fjord"), r.target("nginx"), r.target("haproxy"), r.target("direct")
	peers := []*target{}
	for _, t := range []*target{f, n, h} {
		if t != nil {
			peers = append(peers, t)
		}
	}

	p("_Written by `make bench-ingress` (`bench/ingress`) on %s, run time %s. Rerun to refresh; everything between the bench-ingress markers is regenerated._\n\n",
		r.Start.Format("2006-01-02 15:04 UTC"), r.End.Sub(r.Start).Round(time.Second))
	p("**Machine:** %d CPUs, %s; kernel %s; %s; %s; %s, %s, %s (Debian packages); fjord %s. Load average at start %s, at end %s (the machine is shared: other builds and tests ran alongside).\n\n",
		m.CPUs, m.CPU, m.Kernel, m.Debian, m.Go, m.Nginx, m.HAProxy, m.Wrk, m.Commit, m.LoadStart, m.LoadEnd)

	p("### Setup\n\n")
	p("- **Backends:** %d processes of a minimal Go HTTP server (this program, `-role backend`), one each on 127.0.0.1 … 127.0.0.%d, same port; every answer is 200 with a %d-byte body; keep-alive with a 120 s idle timeout (longer than every proxy's upstream idle timeout, so no keep-alive race is provoked). All three proxies balance round-robin over the same %d backends (checked before the runs: fresh requests reach every backend through every proxy).\n",
		r.Backends, r.Backends, bodySize, r.Backends)
	workers, _ := cpuCount(r.ProxyCPUs)
	p("- **CPUs:** every proxy runs under `taskset -c %s` (%d CPU); wrk, the backends and fjord's store under `taskset -c %s`. The seed's `worker-processes: auto` therefore means %d for all three: ", r.ProxyCPUs, workers, r.ClientCPUs, workers)
	var inf []string
	for _, t := range peers {
		inf = append(inf, t.label()+": "+t.Info)
	}
	p("%s. ingress-nginx writes the CPU count it sees into `worker_processes`; the nginx config here does the same.\n", strings.Join(inf, "; "))
	rn := "`fjord ingress` from the binary"
	if r.Runner == "self" {
		rn = "this program's `-role ingress`, which calls `server.Run` exactly as `fjord ingress` does"
	}
	p("- **fjord:** %s, reading from a private `fjord etcd` store the seed's ConfigMap (applied verbatim), a Service without selector, one EndpointSlice with the %d backends and an Ingress (`ingressClassName: nginx`, host `%s`, `/` Prefix). Access log to a file in the seed's `log-format-upstream`.\n", rn, r.Backends, host)
	p("- **nginx:** its own `nginx.conf`, rendered from the same ConfigMap the way ingress-nginx's template does: `keepalive_timeout %ds`, `keepalive_requests %d`, an `upstream` block with `keepalive %d` (plus ingress-nginx's `keepalive_timeout %ds`, `keepalive_requests %d`), `proxy_http_version 1.1`, `Connection \"\"`, `proxy_buffering off`, `proxy_next_upstream error timeout`, the X-Request-ID/X-Real-IP/X-Forwarded-* headers fjord sets, and `access_log` in the seed's format (unbuffered, like fjord's).\n",
		r.Seed.KeepAlive, r.Seed.KeepAliveReqs, r.Seed.UpKeepalive, r.Seed.UpKeepaliveTimeout, r.Seed.UpKARqs)
	p("- **HAProxy:** the equivalent `haproxy.cfg`: `timeout http-keep-alive %ds`, `http-reuse always` (nginx's pool semantics: any idle upstream connection serves any request), `pool-max-conn %d` per server (≈ the %d idle connections), `timeout connect 5s`, `timeout server 60s`, `retries 3` with `option redispatch`, the same request headers, and a `log-format` in the seed's shape to stdout, which is a file. HAProxy has no `keep-alive-requests`: it never closes a client connection after N requests, nginx and fjord do every %d (wrk reconnects).\n",
		r.Seed.KeepAlive, (r.Seed.UpKeepalive+r.Backends-1)/max(r.Backends, 1), r.Seed.UpKeepalive, r.Seed.KeepAliveReqs)
	p("- **Load:** `wrk -t %d -c N -d %ds --latency -H 'Host: %s'` with keep-alive (wrk's default), N = %s; the `-c 1` run is the one-connection latency run. p50/p99 are wrk's latency distribution of that run (closed loop: each connection sends its next request when the answer arrives). After a discarded warm-up (`-c 16`) per target, %d rounds each run every target at every N once; within a round and N the order of the targets rotates and every other round reverses. Tables show medians over the rounds (leaving out runs disturbed by other work, see below); ratios are ratios of medians. **direct** is wrk to one backend, no proxy: the ceiling for this client and backend on this machine.\n",
		r.Threads, int(r.Dur.Seconds()), host, joinInts(r.Conns), r.Rounds)
	p("- Access logs are counted and emptied after every run (lines vs. requests below); the temp directory with every config and log is removed at the end.\n")
	for _, note := range r.Notes {
		p("- %s\n", note)
	}
	p("- %s\n", r.othersNote())
	p("\n")

	if r.PlotPath != "" {
		rel := r.PlotPath
		if doc != "" {
			if x, err := filepath.Rel(filepath.Dir(doc), r.PlotPath); err == nil {
				rel = x
			}
		}
		p("![requests/s and p99 latency against connections, fjord, nginx, HAProxy, direct](%s)\n\n", rel)
	}

	p("### Throughput (requests/s, median over %d rounds)\n\n", r.Rounds)
	p("| Connections | direct | fjord | nginx | HAProxy | **fjord ÷ nginx** | fjord ÷ HAProxy |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Conns {
		p("| %d | %s | %s | %s | %s | **%s** | %s |\n", c, rpsCell(d, c), rpsCell(f, c), rpsCell(n, c), rpsCell(h, c),
			ratio(medOf(f, c, fRPS), medOf(n, c, fRPS)), ratio(medOf(f, c, fRPS), medOf(h, c, fRPS)))
	}
	p("\nRatios above 1× mean fjord serves more requests per second.\n\n")

	p("### Latency (ms, p50 / p99 of each run, median over %d rounds)\n\n", r.Rounds)
	p("| Connections | direct | fjord | nginx | HAProxy | **fjord ÷ nginx** p50 / p99 | fjord ÷ HAProxy p50 / p99 |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Conns {
		p("| %d | %s | %s | %s | %s | **%s / %s** | %s / %s |\n", c, latCell(d, c), latCell(f, c), latCell(n, c), latCell(h, c),
			ratio(medOf(f, c, fP50), medOf(n, c, fP50)), ratio(medOf(f, c, fP99), medOf(n, c, fP99)),
			ratio(medOf(f, c, fP50), medOf(h, c, fP50)), ratio(medOf(f, c, fP99), medOf(h, c, fP99)))
	}
	p("\nRatios below 1× mean fjord answers faster. ")
	if slices.Contains(r.Conns, 1) && d != nil {
		p("With one connection the latency is the whole round trip; what the proxy adds is the difference to direct: ")
		var add []string
		for _, t := range peers {
			add = append(add, fmt.Sprintf("%s +%s ms at p50, +%s ms at p99", t.label(),
				fmtMs(medOf(t, 1, fP50)-medOf(d, 1, fP50)), fmtMs(medOf(t, 1, fP99)-medOf(d, 1, fP99))))
		}
		p("%s.", strings.Join(add, "; "))
	}
	p("\n\n")

	p("### What one request costs each proxy\n\n")
	p("CPU time (user + system, every process of the proxy, from /proc) during each run divided by the requests wrk completed in it, medians over rounds; in brackets the part spent in the kernel. It does not depend on how busy the shared machine was, and with the proxy CPU saturated throughput is about the inverse of it. Resident memory of all the proxy's processes at the end of the run.\n\n")
	p("| Connections |")
	for _, t := range peers {
		p(" %s CPU µs / req (system) |", t.label())
	}
	for _, t := range peers {
		p(" %s RSS MiB |", t.label())
	}
	p("\n|---:|%s\n", strings.Repeat("---:|", 2*len(peers)))
	for _, c := range r.Conns {
		p("| %d |", c)
		for _, t := range peers {
			p(" %.1f (%.1f) |", t.med(c, fCPU), t.med(c, fSys))
		}
		for _, t := range peers {
			p(" %.1f |", t.med(c, fRSS))
		}
		p("\n")
	}
	p("\n")
	if len(r.Syscalls) > 0 {
		p("System calls per request, counted with `strace -c -f` attached to every process of each proxy during an extra `wrk -c 64 -d 3s` after the measured runs (tracing slows the proxy many times over; only the counts are used), divided by the requests the proxy logged meanwhile:\n\n")
		p("| Proxy | System calls / request | The most frequent (per request) |\n|---|---:|---|\n")
		for _, sc := range r.Syscalls {
			var top []string
			for i, c := range sc.Calls {
				if i == 6 || c.Rate < 0.05 {
					break
				}
				top = append(top, fmt.Sprintf("%s %.2f", c.Name, c.Rate))
			}
			p("| %s | %.1f | %s |\n", sc.Target, sc.PerReq, strings.Join(top, ", "))
		}
		p("\n")
	}

	p("### Errors and access logs\n\n")
	p("| Target | Requests (all runs) | Non-2xx | Socket errors (connect/read/write/timeout) | Access-log lines ÷ requests |\n|---|---:|---:|---:|---:|\n")
	for _, t := range r.Targets {
		var req, lines, non int64
		var se [4]int64
		for _, s := range t.Samples {
			req += s.Requests
			lines += s.LogLines
			non += s.Non2xx
			for i := range se {
				se[i] += s.SockErr[i]
			}
		}
		lr := "—"
		if t.AccessLog != "" && req > 0 {
			lr = fmt.Sprintf("%.4f", float64(lines)/float64(req))
		}
		p("| %s | %d | %d | %d/%d/%d/%d | %s |\n", t.label(), req, non, se[0], se[1], se[2], se[3], lr)
	}
	p("\nLog lines can slightly exceed wrk's count: wrk counts only the requests whose answers arrived before its deadline. ")
	p("Socket read errors are connections the server closed; at `keep-alive-requests` nginx and fjord close a client connection after %d requests, which wrk reports this way only if a request was already sent on it.\n\n", r.Seed.KeepAliveReqs)
	if len(r.FjordMetrics) > 0 {
		p("fjord's own metrics at the end (warm-up and checks included; status 499 is nginx's code for a client that closed its connection before the answer, which is what wrk does with its in-flight requests when its time is up):\n\n```\n%s\n```\n\n", strings.Join(r.FjordMetrics, "\n"))
	}
	for _, x := range []struct {
		name string
		ex   logExcerpt
	}{{"fjord's log (WARN/ERROR lines)", r.FjordLog}, {"nginx's error log (warn and worse)", r.NginxLog}, {"HAProxy's stderr", r.HAProxyLog}} {
		if x.ex.Count == 0 {
			continue
		}
		p("%s: %d lines, the first:\n\n```\n%s\n```\n\n", x.name, x.ex.Count, strings.Join(x.ex.Lines, "\n"))
	}
	if len(r.LogSample) > 0 {
		p("One access-log line of each (the seed's `log-format-upstream`; HAProxy's `%%B` counts the response headers too, and it logs times in whole milliseconds):\n\n```\n")
		for _, l := range r.LogSample {
			p("%-8s %s\n", l.Name+":", l.Text)
		}
		p("```\n\n")
	}

	p("### Against the target\n\n")
	for _, line := range r.verdict() {
		p("- %s\n", line)
	}
	p("\n")

	if r.Profile != "" {
		p("### Where fjord's CPU goes\n\n")
		p("A CPU profile of fjord's ingress under `wrk -c 64` (%.0f req/s while profiling), taken after the measured runs from this program's `-role ingress` (the same `server.Run`, plus a net/http/pprof listener: fjord's metrics port serves no pprof), on the same proxy CPU. Share of all samples, cumulative (a function and what it calls; buckets overlap):\n\n", r.ProfileRPS)
		for _, sh := range r.ProfileShares {
			p("- %s: %.1f%%\n", sh.Name, sh.Rate)
		}
		p("\n<details><summary>pprof -top and -top -cum</summary>\n\n```\n%s```\n\n```\n%s```\n\n</details>\n\n", r.Profile, r.ProfileCum)
	}

	p("<details><summary>Every run (requests/s · p50 ms · p99 ms, in round order; † = other processes kept more than %.2f CPU busy during the run)</summary>\n\n| Target | Connections | Runs |\n|---|---:|---|\n", disturbed)
	var odd []*sample
	var oddNames []string
	for _, t := range r.Targets {
		for _, c := range r.Conns {
			var v []string
			for _, s := range t.Samples {
				if s.Conns == c {
					mark := ""
					if s.Others > disturbed {
						mark = " †"
					}
					v = append(v, fmt.Sprintf("%.0f · %s · %s%s", s.RPS, fmtMs(fP50(s)), fmtMs(fP99(s)), mark))
					if s.errors() > 0 || s.Requests == 0 {
						odd = append(odd, s)
						oddNames = append(oddNames, fmt.Sprintf("%s, -c %d, round %d", t.label(), c, s.Round))
					}
				}
			}
			p("| %s | %d | %s |\n", t.label(), c, strings.Join(v, "; "))
		}
	}
	p("\n</details>\n\n")
	if len(odd) > 0 {
		p("<details><summary>wrk's output of the %d runs with errors or no requests</summary>\n\n", len(odd))
		for i, s := range odd {
			p("%s (other processes: %.2f CPU, %s):\n\n```\n%s```\n\n", oddNames[i], s.Others, s.OthersTop, s.Raw)
		}
		p("</details>\n\n")
	}
	p("<details><summary>The configurations (ports are picked per run)</summary>\n\n")
	p("fjord's objects (plus the seed's ConfigMap, applied as is):\n\n```yaml\n%s```\n\n", r.Objects)
	for _, c := range r.Confs {
		p("%s:\n\n```\n%s```\n\n", c.Name, c.Text)
	}
	p("</details>\n")
	return s.String()
}

// pairedRange is the smallest and largest ratio a/b of the same round's runs
// at c: the spread of the comparison itself, with the machine's drift
// between rounds taken out.
func pairedRange(a, b *target, c int, f func(*sample) float64) (lo, hi float64) {
	ratios := func(quietOnly bool) []float64 {
		var out []float64
		for _, x := range a.Samples {
			if x.Conns != c || (quietOnly && x.Others > disturbed) {
				continue
			}
			for _, y := range b.Samples {
				if y.Conns != c || y.Round != x.Round || (quietOnly && y.Others > disturbed) {
					continue
				}
				if fx, fy := f(x), f(y); fy != 0 && !math.IsNaN(fx) && !math.IsNaN(fy) {
					out = append(out, fx/fy)
				}
			}
		}
		return out
	}
	// Rounds in which other work disturbed either run say more about that
	// work than about the proxies: leave them out if any pair remains.
	v := ratios(true)
	if len(v) == 0 {
		v = ratios(false)
	}
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(v), slices.Max(v)
}

// disturbed is the CPU load by other processes above which a run is marked.
const disturbed = 0.25

// othersNote says how much other work shared the machine during the runs.
func (r *results) othersNote() string {
	var all []float64
	var n int
	names := map[string]int{}
	for _, t := range r.Targets {
		for _, s := range t.Samples {
			all = append(all, s.Others)
			if s.Others > disturbed {
				n++
				for _, nm := range strings.Split(s.OthersTop, ", ") {
					if nm != "" {
						names[nm]++
					}
				}
			}
		}
	}
	if len(all) == 0 {
		return "No runs."
	}
	var top []string
	for nm := range names {
		top = append(top, nm)
	}
	slices.SortFunc(top, func(a, b string) int { return names[b] - names[a] })
	if len(top) > 5 {
		top = top[:5]
	}
	line := fmt.Sprintf("**Other work on the machine:** processes that are not this benchmark's kept a median %.2f CPU (max %.2f) of the 2 busy during the runs", benchkit.Median(all), slices.Max(all))
	if n == 0 {
		return line + "; no run was disturbed by more than " + fmt.Sprintf("%.2f", disturbed) + " CPU."
	}
	line += fmt.Sprintf("; %d of %d runs had more than %.2f CPU of it (marked † in the list of every run), mostly %s. Such runs lose throughput and gain tail latency whichever proxy they measure, so the tables leave them out wherever at least two undisturbed runs remain for the cell", n, len(all), disturbed, strings.Join(top, ", "))
	var fb []string
	for _, t := range r.Targets {
		for _, c := range r.Conns {
			if _, f := t.statN(c, fRPS); f {
				fb = append(fb, fmt.Sprintf("%s at -c %d", t.label(), c))
			}
		}
	}
	if len(fb) > 0 {
		line += " (not so for " + strings.Join(fb, ", ") + ", where all runs count)"
	}
	line += "; the CPU cost per request is hardly affected either way."
	if benchkit.Median(all) > disturbed {
		line += " **With this much other work the absolute numbers and the p99s are unreliable; rerun on a quiet machine.**"
	}
	return line
}

func medOf(t *target, c int, f func(*sample) float64) float64 {
	if t == nil {
		return math.NaN()
	}
	return t.med(c, f)
}

func rpsCell(t *target, c int) string {
	if t == nil {
		return "—"
	}
	v := t.stat(c, fRPS)
	if len(v) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", benchkit.Median(v))
}

func latCell(t *target, c int) string {
	if t == nil {
		return "—"
	}
	return fmtMs(t.med(c, fP50)) + " / " + fmtMs(t.med(c, fP99))
}

func joinInts(v []int) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ", ")
}

// verdict states plainly whether fjord meets the target: beat nginx
// on throughput and on latency, at every connection count.
func (r *results) verdict() []string {
	f, n, h := r.target("fjord"), r.target("nginx"), r.target("haproxy")
	if f == nil || n == nil {
		return []string{"fjord and nginx were not both measured: no verdict."}
	}
	var out []string
	var tpWin, tpTie, latWin, all int
	for _, c := range r.Conns {
		all++
		tr := medOf(f, c, fRPS) / medOf(n, c, fRPS)
		p50 := medOf(f, c, fP50) / medOf(n, c, fP50)
		p99 := medOf(f, c, fP99) / medOf(n, c, fP99)
		lo, hi := pairedRange(f, n, c, fRPS)
		// A median ratio a hair above 1 is no win when rounds go either way.
		tp := "does **not** beat nginx on throughput"
		switch {
		case tr > 1 && lo > 1:
			tpWin++
			tp = "beats nginx on throughput"
		case lo <= 1 && hi >= 1:
			tpTie++
			tp = "is even with nginx on throughput"
		}
		if p50 < 1 && p99 < 1 {
			latWin++
		}
		lat := fmt.Sprintf("beats it on latency (p50 %.2f×, p99 %.2f×)", p50, p99)
		switch {
		case p50 >= 1 && p99 >= 1:
			lat = fmt.Sprintf("does **not** beat it on latency (p50 %.2f×, p99 %.2f×)", p50, p99)
		case p50 >= 1:
			lat = fmt.Sprintf("is slower at the median (p50 %.2f×) but has the shorter tail (p99 %.2f×)", p50, p99)
		case p99 >= 1:
			lat = fmt.Sprintf("is faster at the median (p50 %.2f×) but has the longer tail (p99 %.2f×)", p50, p99)
		}
		line := fmt.Sprintf("`-c %d`: fjord %s (%.2f×; round by round, undisturbed rounds, %.2f–%.2f×) and %s.", c, tp, tr, lo, hi, lat)
		// How busy each proxy's CPU was says whether the proxy set the pace.
		fu := medOf(f, c, fCPU) * medOf(f, c, fRPS) / 1e6
		nu := medOf(n, c, fCPU) * medOf(n, c, fRPS) / 1e6
		// (A proxy's own CPU time misses the softirq work its packets cause, so
		// only a clearly idle proxy is called not the bottleneck.)
		if fu < 0.5 && nu < 0.5 {
			line += fmt.Sprintf(" Both proxies used under half their CPU (fjord %.2f, nginx %.2f): the round trip through client, proxy and backend set the pace, not the proxy.", fu, nu)
		}
		out = append(out, line)
	}
	overall := "**The target is met**: fjord beats nginx on both throughput and latency at every connection count measured."
	if tpWin < all || latWin < all {
		overall = fmt.Sprintf("**The target is not met everywhere**: fjord beats nginx on throughput at %d of %d connection counts (even at %d) and on latency (p50 and p99 both lower) at %d of %d.", tpWin, all, tpTie, latWin, all)
	}
	out = append([]string{overall}, out...)
	if h != nil {
		var hs []string
		for _, c := range r.Conns {
			hs = append(hs, fmt.Sprintf("%.2f× at -c %d", medOf(f, c, fRPS)/medOf(h, c, fRPS), c))
		}
		out = append(out, "Against HAProxy, fjord's throughput is "+strings.Join(hs, ", ")+".")
	}
	var cpu []string
	for _, c := range r.Conns {
		if c == 1 {
			continue
		}
		cpu = append(cpu, fmt.Sprintf("%.1f vs %.1f µs at -c %d", medOf(f, c, fCPU), medOf(n, c, fCPU), c))
	}
	if len(cpu) > 0 {
		line := "CPU per request, fjord vs nginx: " + strings.Join(cpu, ", ") + ". With the proxy CPU saturated, throughput is roughly the inverse of this cost, so it is the number to bring down."
		c := r.Conns[len(r.Conns)-1]
		if slices.Contains(r.Conns, 64) {
			c = 64
		}
		fk, nk := medOf(f, c, fSys), medOf(n, c, fSys)
		fu, nu := medOf(f, c, fCPU)-fk, medOf(n, c, fCPU)-nk
		line += fmt.Sprintf(" Split at -c %d: in the kernel fjord spends %.1f µs per request against nginx's %.1f, in user space %.1f against %.1f (%.1f×)", c, fk, nk, fu, nu, fu/nu)
		var fs, ns *sysCount
		for _, sc := range r.Syscalls {
			switch sc.Target {
			case f.label():
				fs = sc
			case n.label():
				ns = sc
			}
		}
		if fs != nil && ns != nil {
			if r := fs.PerReq / ns.PerReq; r > 0.87 && r < 1.15 {
				line += fmt.Sprintf("; both make about the same number of system calls per request (%.1f and %.1f)", fs.PerReq, ns.PerReq)
			} else {
				line += fmt.Sprintf("; system calls per request: fjord %.1f, nginx %.1f", fs.PerReq, ns.PerReq)
			}
		}
		if fu/nu > 2 && fk/nk < 1.6 {
			line += ": the gap is mostly the user-space work per request (see the profile below)"
		}
		out = append(out, line+".")
	}
	out = append(out, "Absolute numbers move with the machine's load (shared, 2 CPUs); the ratios come from runs interleaved in time and are the figures to compare between versions.")
	return out
}

// plot writes a two-panel PNG: requests/s and p99 against connections.
func (r *results) plot(ctx context.Context, out, tmp string) error {
	names := []string{"direct", "fjord", "nginx", "haproxy"}
	var data strings.Builder
	for _, c := range r.Conns {
		fmt.Fprintf(&data, "%d", c)
		for _, nm := range names {
			t := r.target(nm)
			if t == nil {
				data.WriteString(" NaN NaN")
				continue
			}
			fmt.Fprintf(&data, " %g %g", t.med(c, fRPS), t.med(c, fP99))
		}
		data.WriteString("\n")
	}
	dat := filepath.Join(tmp, "plot.dat")
	if err := os.WriteFile(dat, []byte(data.String()), 0o644); err != nil {
		return err
	}
	var tics []string
	for _, c := range r.Conns {
		tics = append(tics, fmt.Sprintf("\"%d\" %d", c, c))
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1200,480 font "DejaVu Sans,10"
set output %q
set datafile missing "NaN"
set logscale x 2
set xrange [%g:%g]
set xtics (%s)
set xlabel "wrk connections (keep-alive)"
set grid
set key top left
set multiplot layout 1,2 title "Ingress on loopback, proxies on %d CPU (medians of %d rounds, %s)"
set title "Throughput"
set ylabel "requests/s"
set yrange [0:*]
plot %q u 1:2 w lp dt 2 lw 1 pt 1 lc rgb "#888888" t "direct (no proxy)", \
     %q u 1:4 w lp lw 2 pt 7 lc rgb "#1f77b4" t "fjord", \
     %q u 1:6 w lp lw 2 pt 5 lc rgb "#2ca02c" t "nginx", \
     %q u 1:8 w lp lw 2 pt 9 lc rgb "#d62728" t "HAProxy"
set title "p99 latency (wrk --latency)"
set ylabel "ms"
set logscale y 10
set yrange [*:*]
plot %q u 1:3 w lp dt 2 lw 1 pt 1 lc rgb "#888888" t "direct (no proxy)", \
     %q u 1:5 w lp lw 2 pt 7 lc rgb "#1f77b4" t "fjord", \
     %q u 1:7 w lp lw 2 pt 5 lc rgb "#2ca02c" t "nginx", \
     %q u 1:9 w lp lw 2 pt 9 lc rgb "#d62728" t "HAProxy"
unset multiplot
`, abs, float64(r.Conns[0])/1.5, float64(r.Conns[len(r.Conns)-1])*1.5, strings.Join(tics, ", "), mustCount(r.ProxyCPUs), r.Rounds, r.Start.Format("2006-01-02"), dat, dat, dat, dat, dat, dat, dat, dat)
	gp := filepath.Join(tmp, "plot.gp")
	if err := os.WriteFile(gp, []byte(script), 0o644); err != nil {
		return err
	}
	if _, err := runCmd(ctx, time.Minute, nil, "gnuplot", gp); err != nil {
		return err
	}
	return nil
}

func mustCount(l string) int { n, _ := cpuCount(l); return n }
