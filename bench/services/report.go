package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

type machine struct {
	CPUs                       int
	CPU, Kernel, Go, Commit    string
	Nft, Iptables              string
	LoadStart, LoadEnd, Memory string
}

type writeRow struct {
	From, To, Objects int
	Fjord, Kube       float64 // s
}

type results struct {
	Start, End            time.Time
	Machine               machine
	Sizes, Skipped        []int
	Systems               []*system
	Writes                []writeRow
	KubeVersion, KubeNote string
	Plot, PlotNote        string
	ApplyNote             string // fjord's store refused a transaction as too large
	MaxBatch              int
}

func machineInfo(repo string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: benchkit.LoadAvg()}
	m.CPU, m.Kernel = benchkit.CPUModel(), benchkit.KernelRelease()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.Memory = fmt.Sprintf("%.0f GiB RAM", kb/1024/1024)
		}
	}
	if out, err := exec.Command("nft", "--version").Output(); err == nil {
		m.Nft = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("iptables", "--version").Output(); err == nil {
		m.Iptables = strings.TrimSpace(string(out))
	}
	m.Commit = benchkit.Commit(repo)
	return m
}

func (r *results) sys(key string) *system {
	for _, s := range r.Systems {
		if s.Key == key {
			return s
		}
	}
	return nil
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// ratio renders fjord ÷ other; bold when asked.
func ratio(f, o float64, bold bool) string {
	if math.IsNaN(f) || math.IsNaN(o) || o == 0 {
		return "—"
	}
	s := fmt.Sprintf("%.2f×", f/o)
	if f/o < 0.095 {
		s = fmt.Sprintf("%.3f×", f/o)
	}
	if bold {
		return "**" + s + "**"
	}
	return s
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, out...), ",")
}

// cell is why a value is missing at a size, or "".
func (s *system) missing(n int) string {
	if s.Skipped != "" {
		return "not run"
	}
	r := s.Res[n]
	switch {
	case r == nil:
		return "not run"
	case r.Skipped != "":
		return "skipped (" + r.Skipped + ")"
	case r.ColdFail != "":
		return "**" + r.ColdFail + "**"
	}
	return ""
}

func (s *system) stat(n int, f func(*sizeResult) float64) float64 {
	if s == nil || s.missing(n) != "" {
		return math.NaN()
	}
	return f(s.Res[n])
}

func p50(r *sizeResult) float64  { return benchkit.Quantile(r.Connect, 0.5) }
func p99(r *sizeResult) float64  { return benchkit.Pct(r.Connect, 99) }
func cold(r *sizeResult) float64 { return benchkit.Quantile(r.Cold, 0.5) }
func chg(r *sizeResult) float64  { return benchkit.Quantile(r.Change, 0.5) }
func rss(r *sizeResult) float64  { return r.RSS }

// markdown renders the section body that goes between the markers.
func (r *results) markdown() string {
	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	m := r.Machine
	fj, nft, ipt := r.sys("fjord"), r.sys("nft"), r.sys("ipt")
	others := []*system{nft, ipt}
	p("_Written by `make bench-services` (`bench/services`) on %s, run time %s. Rerun to refresh; everything between the bench-services markers is regenerated._\n\n",
		r.Start.Format("2006-01-02 15:04 UTC"), r.End.Sub(r.Start).Round(time.Second))
	p("**Machine:** %d CPUs, %s, %s; kernel %s; %s; %s; %s; fjord %s; %s. Load average at start %s, at end %s (the machine is shared: other builds and tests ran alongside).\n\n",
		m.CPUs, m.CPU, m.Memory, m.Kernel, m.Go, m.Nft, m.Iptables, m.Commit, orDefault(r.KubeVersion, "kube-proxy not run"), m.LoadStart, m.LoadEnd)
	if r.KubeNote != "" {
		p("> **The kube-proxy columns are empty:** %s. Build kube-apiserver and kube-proxy (v1.37.2 from the `k8s.io/kubernetes` module, outside this repository) and pass their directory with `-kube-bin`.\n\n", r.KubeNote)
	}
	if len(r.Skipped) > 0 {
		var v []string
		for _, n := range r.Skipped {
			v = append(v, thousands(n))
		}
		p("> **Not measured in this run:** %s services (the run's time budget, `-budget %s`, was spent).\n\n", strings.Join(v, ", "), *flagBudget)
	}

	p("### Setup\n\n")
	p("Every size has N Services `bs-00000`… with a fixed ClusterIP (10.96.4.0 onwards, so ClusterIP:port is distinct for all) and one TCP port 80 → 8080, " +
		"**without selectors**, and for each an EndpointSlice of the same name with **3 ready endpoints**: the same three backends (HTTP on 8080) for every service. " +
		"The very same JSON documents are written to fjord's store (in transactions of ≤ 5,000 objects, through the same decoding, defaulting and validation as `fjord apply`) and to a real kube-apiserver; sizes grow by adding services, with the proxies stopped.\n\n")
	if r.ApplyNote != "" {
		p("> **fjord store limit:** %s. The embedded etcd takes up to 10,000 operations and 16 MiB per request; the benchmark splits a refused transaction in two and retries (largest written: %s objects).\n\n",
			r.ApplyNote, thousands(r.MaxBatch))
	}
	p("- **fjord**: `fjord lab up --nodes 1 --no-demo --mode routed` (%s); the node namespace runs `fjord agent`, whose service proxy programs `table ip fjord` (verdict maps). A client pod and four backend pods (a, b, c serve every service; d is the target of the change test) run on n1. The agent's resident memory also holds its other parts (pod network, endpoints controller, which mirrors the Services too).\n",
		orDefault(proxyConfigNote(), "no `--proxy-config`: kube-proxy's defaults, scheduler random, minSyncPeriod 1 s, syncPeriod 30 s"))
	p("- **kube-proxy** %s, one process per mode, each in its own node namespace (`--proxy-mode=nftables` / `iptables`, `--nodeport-addresses=primary`, `--cluster-cidr=10.244.0.0/16`, defaults otherwise: minSyncPeriod 1 s, syncPeriod 30 s), "+
		"talking to kube-apiserver (in its own namespace, on fjord's embedded etcd over a unix socket) over a veth. Each node namespace has its own client and four backends in namespaces wired exactly like the lab's pods: same addresses, /32 routes to a veth, same gateway and MTU. "+
		"The iptables mode uses the system's `iptables` (%s). kube-apiserver adds its own `kubernetes` Service (10.96.0.1), so kube-proxy sees N+1 services.\n",
		orDefault(r.KubeVersion, "(not run)"), m.Iptables)
	p("- **Backends**, for all three: this program in server mode (`-serve :8080`), which answers HTTP with its pod name like `fjord echo` and listens with `TCP_DEFER_ACCEPT`, so a connect that sends no data completes in the kernel without waking the server. " +
		"With `fjord echo` as backend, connects were 50–100 µs slower whenever the backend's thread slept on the other vCPU (waking it is expensive in this VM), a matter of luck per process that showed up as one proxy being slow in one run and not in the next.\n")
	p("- Connects are made from the client namespace with raw non-blocking sockets (`connect` then `poll` for completion; closed with a reset so no TIME_WAIT piles up): the time from sending the SYN to the SYN-ACK, i.e. the first packet's round trip through the proxy's DNAT rules to a real listener. "+
		"Every proxy gets the same %d random services in the same order, in batches of 10 that rotate among the proxies, with a 10 ms pause after each round of batches so that the measurement spans seconds and load elsewhere on the machine hits all proxies alike (after 20 unmeasured warm-up connects each).\n\n", *flagConnects)

	p("### First-packet round trip (TCP connect time)\n\n")
	if r.Plot != "" {
		rel, err := filepath.Rel(filepath.Dir(*flagDoc), r.Plot)
		if err != nil {
			rel = r.Plot
		}
		p("![TCP connect time p50 and p99 against the number of services, fjord and kube-proxy nftables and iptables](%s)\n\n", filepath.ToSlash(rel))
	} else if r.PlotNote != "" {
		p("_No plot: %s._\n\n", r.PlotNote)
	}
	p("| Services | fjord p50 µs | fjord p99 µs | nftables p50 µs | nftables p99 µs | iptables p50 µs | iptables p99 µs | fjord ÷ nftables p50 / p99 | fjord ÷ iptables p50 / p99 |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range r.Sizes {
		row := []string{thousands(n)}
		for _, sy := range []*system{fj, nft, ipt} {
			if why := sy.missing(n); why != "" {
				row = append(row, why, "")
				continue
			}
			row = append(row, num(sy.stat(n, p50), 1), num(sy.stat(n, p99), 1))
		}
		for _, o := range others {
			row = append(row, ratio(fj.stat(n, p50), o.stat(n, p50), true)+" / "+ratio(fj.stat(n, p99), o.stat(n, p99), false))
		}
		p("| %s |\n", strings.Join(row, " | "))
	}
	p("\n")
	var fails []string
	for _, sy := range []*system{fj, nft, ipt} {
		for _, n := range r.Sizes {
			if sy.missing(n) == "" && sy.Res[n].ConnectFails > 0 {
				fails = append(fails, fmt.Sprintf("%s at %s services: %d of %d connects failed (last: %s)", sy.Name, thousands(n),
					sy.Res[n].ConnectFails, sy.Res[n].ConnectFails+len(sy.Res[n].Connect), sy.Res[n].ConnectErr))
			}
		}
	}
	if len(fails) > 0 {
		p("**Failed connects** (not in the percentiles): %s.\n\n", strings.Join(fails, "; "))
	} else {
		p("Every measured connect succeeded. ")
	}
	p("Ratios below 1× mean fjord is faster. p99 of %d samples is the %dth smallest: one slow connect on a shared machine moves it, so read it as a tail indicator.\n\n",
		*flagConnects, int(math.Ceil(0.99*float64(*flagConnects))))

	p("### Programming every service from scratch\n\n")
	p("The proxy is stopped, its ruleset emptied (`nft delete table ip fjord`; `nft flush ruleset` in a kube-proxy node namespace, which holds nothing else), and started again with all N services in its store: fjord through `fjord lab restart-agent`, kube-proxy as a new process. "+
		"The time runs from the proxy process's start (its start time in /proc) until a connect to the last-created service succeeds, overlapping attempts every 10 ms, and then connects to service 0 and 8 random others succeed too. "+
		"It includes process start-up, reading every object from the store, building and loading the ruleset. CPU is user+system time of the proxy process and its children (`nft`, `iptables-restore`; finished or still running) at that moment. "+
		"While one proxy programs, the other two are frozen (SIGSTOP of their process groups, SIGCONT afterwards), so each has the machine to itself. "+
		"Up to %d runs per proxy and size (one when the first took over %s); the proxies take turns. Each wait is bounded by %s.\n\n",
		*flagRounds, *flagRepeatLimit, *flagSetupTimeout)
	p("| Services | fjord s | nftables s | iptables s | fjord ÷ nftables | fjord ÷ iptables | CPU s fjord / nftables / iptables | runs |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, n := range r.Sizes {
		row := []string{thousands(n)}
		var cpus, runs []string
		for _, sy := range []*system{fj, nft, ipt} {
			if why := sy.missing(n); why != "" {
				row = append(row, why)
				cpus, runs = append(cpus, "—"), append(runs, "—")
				continue
			}
			row = append(row, num(sy.stat(n, cold), 2))
			cpus = append(cpus, num(benchkit.Quantile(sy.Res[n].ColdCPU, 0.5), 1))
			var v []string
			for _, x := range sy.Res[n].Cold {
				v = append(v, num(x, 2))
			}
			runs = append(runs, strings.Join(v, ", "))
		}
		for _, o := range others {
			row = append(row, ratio(fj.stat(n, cold), o.stat(n, cold), true))
		}
		row = append(row, strings.Join(cpus, " / "), strings.Join(runs, " · "))
		p("| %s |\n", strings.Join(row, " | "))
	}
	p("\nValues are medians of the runs listed last (fjord · nftables · iptables, in seconds).\n\n")
	p("Where the time went, from each proxy's own log (medians, seconds): for fjord, from the agent's start to its `service proxy` line (the agent has registered the node and set up the pod network; the proxy lists the store next) and from there until the rules were live; for kube-proxy, from its start to its informers holding every Service and EndpointSlice (the later of the two `Caches are synced` lines for service and endpoint slice config) and from there until live.\n\n")
	p("| Services | fjord: to proxy start / then to live | nftables: to informers synced / then to live | iptables: to informers synced / then to live |\n|---:|---:|---:|---:|\n")
	for _, n := range r.Sizes {
		row := []string{thousands(n)}
		for _, sy := range []*system{fj, nft, ipt} {
			if sy.missing(n) != "" || len(sy.Res[n].ColdPhase) != len(sy.Res[n].Cold) {
				row = append(row, "—")
				continue
			}
			var rest []float64
			for i, c := range sy.Res[n].Cold {
				rest = append(rest, c-sy.Res[n].ColdPhase[i])
			}
			row = append(row, num(benchkit.Quantile(sy.Res[n].ColdPhase, 0.5), 2)+" / "+num(benchkit.Quantile(rest, 0.5), 2))
		}
		p("| %s |\n", strings.Join(row, " | "))
	}
	p("\n")

	p("### One change reaching the kernel, all services present\n\n")
	p("With every proxy running and all N services programmed, one service's EndpointSlice is replaced: its three endpoints by echo-d alone (then, as a second sample, back to a, b, c). "+
		"The time runs from the store acknowledging the write (fjord's etcd transaction; kube-apiserver's answer to the PATCH) until an HTTP request through the ClusterIP is answered by the new endpoint, polled every few ms on new connections. "+
		"%d changes per proxy and size, on the same services for all. fjord is measured with both kube-proxies frozen; the two kube-proxies share kube-apiserver, so each write reaches both and they are measured together on it, with fjord frozen. "+
		"Every write comes at least 1.1 s after the previous one to the same store, so minSyncPeriod (1 s) does not hold it back; each wait is bounded by %s.\n\n",
		2**flagChanges, *flagChangeTO)
	p("| Services | fjord ms | nftables ms | iptables ms | fjord ÷ nftables | fjord ÷ iptables | write ack ms fjord / kube-apiserver |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|\n")
	var chFails []string
	for _, n := range r.Sizes {
		row := []string{thousands(n)}
		for _, sy := range []*system{fj, nft, ipt} {
			if why := sy.missing(n); why != "" {
				row = append(row, why)
				continue
			}
			rr := sy.Res[n]
			row = append(row, fmt.Sprintf("%s (%s – %s) ×%d", num(chg(rr), 0), num(minOf(rr.Change), 0), num(maxOf(rr.Change), 0), len(rr.Change)))
			if rr.ChangeFails > 0 {
				chFails = append(chFails, fmt.Sprintf("%s at %s services: %d of %d not seen (%s)", sy.Name, thousands(n), rr.ChangeFails, rr.ChangeFails+len(rr.Change), rr.ChangeErr))
			}
		}
		for _, o := range others {
			row = append(row, ratio(fj.stat(n, chg), o.stat(n, chg), true))
		}
		ack := func(sy *system) string {
			return num(sy.stat(n, func(r *sizeResult) float64 { return benchkit.Quantile(r.ChangeAck, 0.5) }), 1)
		}
		row = append(row, ack(fj)+" / "+ack(nft))
		p("| %s |\n", strings.Join(row, " | "))
	}
	p("\nMedian (min – max) ×samples, in milliseconds. A proxy whose change took over 20 s, or was not seen in time, gives at most two samples at that size (the run has a time budget), and \"back to a, b, c\" is only measured after \"to d\" was seen.")
	if len(chFails) > 0 {
		p(" **Changes never seen** (not in the medians): %s.", strings.Join(chFails, "; "))
	}
	p("\n\n")

	p("### Memory and idle CPU\n\n")
	p("VmRSS (and VmHWM, the peak since the process started) of the proxy process after the measurements at each size: the fjord agent of n1 (which also runs the pod network and the endpoints controller) and each kube-proxy (their `nft` / `iptables-restore` children are not included). "+
		"Idle CPU is the CPU time the proxy and its children used over a window with all services programmed and nothing changing (all three running, the window starting %s after the last cold start; %s at 10,000 services and more, a third of that below), in CPU-seconds per second: the cost of periodic resyncs (syncPeriod 30 s for all).\n\n", *flagSettle, *flagIdle)
	p("| Services | fjord agent MiB (peak) | kube-proxy nftables MiB (peak) | kube-proxy iptables MiB (peak) | fjord ÷ nftables | fjord ÷ iptables | idle CPU fjord / nftables / iptables |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range r.Sizes {
		row := []string{thousands(n)}
		for _, sy := range []*system{fj, nft, ipt} {
			if why := sy.missing(n); why != "" {
				row = append(row, why)
				continue
			}
			row = append(row, fmt.Sprintf("%s (%s)", num(sy.Res[n].RSS, 1), num(sy.Res[n].HWM, 1)))
		}
		for _, o := range others {
			row = append(row, ratio(fj.stat(n, rss), o.stat(n, rss), true))
		}
		var idle []string
		for _, sy := range []*system{fj, nft, ipt} {
			idle = append(idle, num(sy.stat(n, func(r *sizeResult) float64 {
				if r.IdleWindow == 0 {
					return math.NaN()
				}
				return r.IdleCPU
			}), 3))
		}
		row = append(row, strings.Join(idle, " / "))
		p("| %s |\n", strings.Join(row, " | "))
	}
	p("\n")

	if len(r.Writes) > 0 {
		p("<details><summary>Writing the objects (context, not a comparison)</summary>\n\n")
		p("Services and their slices added before each size, written to both stores in parallel: fjord's in transactions of ≤ 5,000 objects, kube-apiserver with 12 concurrent POSTs (one object each), so the two columns measure different things.\n\n")
		p("| Services added | Objects | fjord store s | kube-apiserver s |\n|---|---:|---:|---:|\n")
		for _, w := range r.Writes {
			p("| %s → %s | %s | %.1f | %s |\n", thousands(w.From), thousands(w.To), thousands(w.Objects), w.Fjord, orDefault(num(nanIfZero(w.Kube, r.KubeNote != ""), 1), "—"))
		}
		p("\n</details>\n\n")
	}

	p("### What the numbers say\n\n")
	for _, line := range r.findings() {
		p("- %s\n", line)
	}
	return s.String()
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nanIfZero(v float64, zeroIsNaN bool) float64 {
	if zeroIsNaN && v == 0 {
		return math.NaN()
	}
	return v
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func proxyConfigNote() string {
	if *flagProxyConfig == "" {
		return ""
	}
	return "with `--proxy-config " + *flagProxyConfig + "`"
}

// findings turns the tables into sentences; everything here is computed.
func (r *results) findings() []string {
	var out []string
	if len(r.Sizes) == 0 {
		return []string{"Nothing was measured."}
	}
	lo, hi := r.Sizes[0], r.Sizes[len(r.Sizes)-1]
	for _, sy := range r.Systems {
		if sy.Skipped != "" {
			continue
		}
		a, b := sy.stat(lo, p50), sy.stat(hi, p50)
		if !math.IsNaN(a) && !math.IsNaN(b) && hi != lo {
			out = append(out, fmt.Sprintf("Connect time, %s: p50 %.1f µs at %s services and %.1f µs at %s (%.2f×); p99 %.1f → %.1f µs.",
				sy.Name, a, thousands(lo), b, thousands(hi), b/a, sy.stat(lo, p99), sy.stat(hi, p99)))
		}
		for _, n := range r.Sizes {
			if res := sy.Res[n]; res != nil && res.ColdFail != "" {
				out = append(out, fmt.Sprintf("%s did not program %s services: %s; its later sizes were skipped.", sy.Name, thousands(n), res.ColdFail))
			}
		}
	}
	for _, sy := range r.Systems {
		if sy.Skipped != "" {
			continue
		}
		var v []string
		for _, n := range r.Sizes {
			if res := sy.Res[n]; sy.missing(n) == "" && res.IdleWindow > 0 {
				v = append(v, fmt.Sprintf("%.3f at %s", res.IdleCPU, thousands(n)))
			}
		}
		if len(v) > 0 {
			out = append(out, fmt.Sprintf("Idle CPU of %s (CPU-seconds per second, nothing changing): %s.", sy.Name, strings.Join(v, ", ")))
		}
		for _, n := range r.Sizes {
			res := sy.Res[n]
			if sy.missing(n) != "" || res.IdleSamples == 0 {
				continue
			}
			var busy []string
			for _, c := range sortedKeys(res.IdleChildren) {
				if share := float64(res.IdleChildren[c]) / float64(res.IdleSamples); share >= 0.2 {
					busy = append(busy, fmt.Sprintf("`%s` in %.0f%%", c, 100*share))
				}
			}
			if len(busy) > 0 {
				out = append(out, fmt.Sprintf("In the idle window at %s services (%.0f s, sampled every 0.5 s), %s had a child running: %s of the samples.",
					thousands(n), res.IdleWindow, sy.Name, strings.Join(busy, ", ")))
			}
		}
	}
	fj := r.sys("fjord")
	for _, key := range []string{"nft", "ipt"} {
		o := r.sys(key)
		if o == nil || o.Skipped != "" {
			continue
		}
		var biggest int
		for _, n := range r.Sizes {
			if !math.IsNaN(fj.stat(n, p50)) && !math.IsNaN(o.stat(n, p50)) {
				biggest = n
			}
		}
		if biggest == 0 {
			continue
		}
		n := biggest
		out = append(out, fmt.Sprintf("At %s services against %s: connect p50 %s, programming from scratch %s, one change %s, memory %s (fjord ÷ %s).",
			thousands(n), o.Name, ratio(fj.stat(n, p50), o.stat(n, p50), false), ratio(fj.stat(n, cold), o.stat(n, cold), false),
			ratio(fj.stat(n, chg), o.stat(n, chg), false), ratio(fj.stat(n, rss), o.stat(n, rss), false), o.Name))
	}
	if fj != nil && fj.Skipped == "" && fj.missing(lo) == "" && len(fj.Res[lo].ColdPhase) == len(fj.Res[lo].Cold) && len(fj.Res[lo].Cold) > 0 {
		var rest []float64
		for i, c := range fj.Res[lo].Cold {
			rest = append(rest, c-fj.Res[lo].ColdPhase[i])
		}
		if m := benchkit.Quantile(rest, 0.5); m > 0.9 && m < 1.4 && *flagProxyConfig == "" {
			out = append(out, fmt.Sprintf("fjord's cold start at %s services is %.2f s from its service proxy's start to live rules, about minSyncPeriod (1 s): "+
				"the sync runner (internal/syncrunner) makes its first sync at once, the proxy (internal/svcproxy) skips it because its store mirrors are not filled yet, and the runner then waits minSyncPeriod after that empty sync before the real one. kube-proxy waits for its informers before its first sync.",
				thousands(lo), m))
		}
	}
	if fj != nil && fj.Skipped == "" {
		for _, n := range r.Sizes {
			res := fj.Res[n]
			if fj.missing(n) != "" || len(res.Change) == 0 || benchkit.Quantile(res.Change, 0.5) < 5000 || res.IdleSamples == 0 {
				continue
			}
			for c, k := range res.IdleChildren {
				if share := float64(k) / float64(res.IdleSamples); strings.Contains(c, "list table") && share >= 0.2 {
					out = append(out, fmt.Sprintf("At %s services one change took fjord %.1f s (median of %d), and with nothing changing its agent was listing its whole table (`%s`) in %.0f%% of the idle samples: "+
						"the periodic full resync (every syncPeriod, 30 s; internal/proxy/nftproxy listKernel) takes about as long as the period or longer at this size, so the agent resyncs almost back to back and an incremental change waits for the running resync.",
						thousands(n), benchkit.Quantile(res.Change, 0.5)/1000, len(res.Change), c, 100*share))
					break
				}
			}
		}
	}
	if fj != nil {
		var v []string
		for _, n := range r.Sizes {
			if c := fj.stat(n, cold); !math.IsNaN(c) {
				v = append(v, fmt.Sprintf("%s s at %s", num(c, 2), thousands(n)))
			}
		}
		if len(v) > 0 {
			out = append(out, "fjord's programming from scratch: "+strings.Join(v, ", ")+
				" (this includes the agent's own start: store connection, node registration, pod network, and the endpoints controller's election).")
		}
	}
	out = append(out, "Absolute numbers move with the machine's load (2 shared CPUs); the ratios come from runs interleaved in time and are the figures to compare between versions.")
	return out
}

// ---------------------------------------------------------------------------------
// Plot

func (b *bench) plot(ctx context.Context, path string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		b.logf("gnuplot not found: apt-get install -y gnuplot-nox")
		if _, err := benchkit.RunCmd(ctx, 5*time.Minute, append(os.Environ(), "DEBIAN_FRONTEND=noninteractive"), "apt-get", "install", "-y", "-q", "gnuplot-nox"); err != nil {
			return fmt.Errorf("gnuplot is not installed and apt-get install gnuplot-nox failed (%v); install it and rerun", err)
		}
	}
	r := b.res
	var data strings.Builder
	any := false
	for _, n := range r.Sizes {
		fmt.Fprintf(&data, "%d", n)
		for _, key := range []string{"fjord", "nft", "ipt"} {
			sy := r.sys(key)
			for _, f := range []func(*sizeResult) float64{p50, p99} {
				v := math.NaN()
				if sy != nil {
					v = sy.stat(n, f)
				}
				if math.IsNaN(v) {
					fmt.Fprint(&data, " ?")
				} else {
					fmt.Fprintf(&data, " %.2f", v)
					any = true
				}
			}
		}
		data.WriteString("\n")
	}
	if !any {
		return fmt.Errorf("no connect times to plot")
	}
	dat := filepath.Join(b.tmp, "connect.dat")
	if err := os.WriteFile(dat, []byte(data.String()), 0o644); err != nil {
		return err
	}
	var tics []string
	for _, n := range r.Sizes {
		tics = append(tics, fmt.Sprintf("\"%s\" %d", thousands(n), n))
	}
	// Say on the plot where a proxy did not program its services in time.
	var labels string
	for i, key := range []string{"fjord", "nft", "ipt"} {
		sy := r.sys(key)
		if sy == nil || sy.Skipped != "" {
			continue
		}
		for _, n := range r.Sizes {
			if res := sy.Res[n]; res != nil && res.ColdFail != "" {
				align := "center"
				if n == r.Sizes[len(r.Sizes)-1] && len(r.Sizes) > 1 {
					align = "right"
				}
				labels += fmt.Sprintf("set label %d \"%s: not programmed\\nwithin %s at %s\" at %d, graph %.2f %s textcolor rgb \"%s\"\n",
					i+1, sy.Name, flagSetupTimeout.Round(time.Second), thousands(n), n, 0.2+0.12*float64(i), align, []string{"#1f77b4", "#2ca02c", "#d62728"}[i])
				break
			}
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmpPNG := filepath.Join(b.tmp, "plot.png")
	script := fmt.Sprintf(`set terminal %%s size 1100,560 font ",11"
set output %q
set title "First-packet round trip (TCP connect to a ClusterIP) vs number of services\n%d CPUs, kernel %s, %s"
set xlabel "services (3 endpoints each)"
set ylabel "connect time (µs)"
set logscale x
set logscale y
set xtics (%s)
set xrange [%g:%g]
set grid
set key outside right top
set datafile missing "?"
%s
plot %q using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "fjord p50", \
     %q using 1:3 with linespoints lw 1 pt 6 dt 2 lc rgb "#1f77b4" title "fjord p99", \
     %q using 1:4 with linespoints lw 2 pt 5 lc rgb "#2ca02c" title "kube-proxy nftables p50", \
     %q using 1:5 with linespoints lw 1 pt 4 dt 2 lc rgb "#2ca02c" title "kube-proxy nftables p99", \
     %q using 1:6 with linespoints lw 2 pt 9 lc rgb "#d62728" title "kube-proxy iptables p50", \
     %q using 1:7 with linespoints lw 1 pt 8 dt 2 lc rgb "#d62728" title "kube-proxy iptables p99"
`, tmpPNG, r.Machine.CPUs, r.Machine.Kernel, r.Start.Format("2006-01-02"), strings.Join(tics, ", "),
		float64(r.Sizes[0])/1.6, float64(r.Sizes[len(r.Sizes)-1])*1.6, labels, dat, dat, dat, dat, dat, dat)
	var lastErr error
	for _, term := range []string{"pngcairo", "png"} {
		gp := filepath.Join(b.tmp, "plot.gp")
		if err := os.WriteFile(gp, []byte(fmt.Sprintf(script, term)), 0o644); err != nil {
			return err
		}
		if _, lastErr = benchkit.RunCmd(ctx, time.Minute, os.Environ(), "gnuplot", gp); lastErr == nil {
			if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
				return err
			}
			return copyFile(tmpPNG, abs)
		}
	}
	return lastErr
}

// ---------------------------------------------------------------------------------
// Document
