package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// What the design promises, next to each measured number.
const (
	designAgent = "nothing lost: a restarted agent reads the kernel, plans, and finds nothing to change " +
		"(routes, rules and conntrack stay); its Lease outlives the restart, so no endpoint changes"
	designEtcd = "nothing lost: the data plane keeps the last good state while the store is away; when etcd " +
		"comes back and revokes every Lease that ran out meanwhile, the nodes get one Lease duration to put " +
		"theirs back, so no endpoint leaves a Service"
	designChanges = "nothing lost: each change swaps an immutable routing snapshot; requests and connections " +
		"in flight are never dropped"
	designSlowloris = "nothing lost: a slow client holds only its own connection (cut by client-header-timeout, " +
		"60 s; capped by max-worker-connections) and cannot block others"
	designIngressRestart = "one process, no hand-over of its listening socket: requests in flight at SIGTERM " +
		"finish; connections made until the new process listens are refused (lost); the new process " +
		"answers nothing before it has its routes (no 404/503)"
)

// results is everything the report shows.
type results struct {
	Start, End         time.Time
	CPU, Kernel        string
	LoadStart, LoadEnd string
	Commit             string
	Period, Timeout    time.Duration
	Streams            int
	Baseline           map[string]tally
	Faults             []faultResult
	Partitions         []partitionResult
	Hiccups            []partitionResult
}

// faultResult is one fault's outcome.
type faultResult struct {
	Name, Design string
	ZeroLoss     bool // the design says nothing may be lost
	Reps         int
	Traffic      map[string]tally // per class, the streams the fault is about
	Others       tally            // the other streams (ingress faults), which must lose nothing
	Flaps        int              // endpoint readiness changes meanwhile
	Recover      []float64        // s, per repetition
	RecoverWhat  string
	Notes        []string
}

// partitionResult is one partition of one node (s from the cut, or from the heal).
type partitionResult struct {
	Node, Leader   string
	Length         float64 // how long it was cut off
	Out, ProxyOut  float64 // its endpoints unready in every Service / gone from every other proxy (-1: never)
	LastLoss       float64 // last request lost by healthy traffic during the cut (0: none)
	Back           float64 // after the heal: ready in every Service again
	ProxyBack      float64 // after the heal: back in every other proxy
	RoutesStay     bool
	Flaps          int
	Late           []string // requests from the other nodes lost after the endpoints left
	Healthy, Cut   tally
	HealthyByClass map[string]tally
}

func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("_Written by `make chaos` (`bench/chaos`) on %s, run time %s. Rerun to refresh; everything between the bench-chaos markers is regenerated._\n\n",
		r.Start.Format("2006-01-02 15:04 UTC"), r.End.Sub(r.Start).Round(time.Second))
	w("Machine: %s, kernel %s, load average %s at the start and %s at the end; fjord %s. ", r.CPU, r.Kernel, r.LoadStart, r.LoadEnd, r.Commit)
	w("A 3-node vxlan lab (`fjord lab up --name %s --subnet %s`: embedded etcd, agents' `--lease-ttl 4s`), its demo workload (one echo pod per node, Service `echo`, an Ingress for every Host), a NodePort Service `chaos-np` on the same pods and an Ingress for Host `%s`.\n\n", labName, labSubnet, chaosHost)
	w("Traffic: %d streams, each sending a request every %v on a fixed schedule, whatever happened to the earlier ones; each request opens its own connection (or UDP socket), so every one is a new flow, and one without the right answer within %v is lost. ", r.Streams, r.Period, r.Timeout)
	w("Pod to pod: HTTP from each echo pod's namespace to the next node's pod (n1→n2→n3→n1). ClusterIP TCP and UDP: HTTP to `echo:80` and a datagram to `echo:9000/udp` from each echo pod. NodePort: HTTP from the host to each node's port %d. Ingress: HTTP from the host to n1 (Hosts `echo.lab` and `%s`).\n\n", nodePort, chaosHost)
	base := sumClasses(r.Baseline)
	w("Baseline, 10 s without a fault: %d requests, %d lost.\n\n", base.Sent, base.Lost)

	w("### Summary\n\n")
	w("| fault | what the design says | requests lost (of sent) | endpoint changes | time to recover, median (min–max) | verdict |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Faults {
		t := sumClasses(f.Traffic)
		t.merge(f.Others)
		rec := "—"
		if len(f.Recover) > 0 {
			rec = fmt.Sprintf("%s: %s over %d", f.RecoverWhat, spread(f.Recover), len(f.Recover))
		}
		w("| %s | %s | %s | %d | %s | %s |\n", f.Name, f.Design, lost(t), f.Flaps, rec, f.verdict())
	}
	if len(r.Partitions) > 0 {
		var out, back []float64
		var healthy tally
		for _, p := range r.Partitions {
			out, back = append(out, p.Out), append(back, p.Back)
			healthy.merge(p.Healthy)
		}
		verdict := "within the 5 s target"
		if benchkit.Median(out) > 5 || slices.Min(out) < 0 {
			verdict = "**above the 5 s target**"
		}
		w("| a node partitioned for %.0f s (%d times) | traffic through Services from the other nodes is lost until the node's endpoints leave them (target ≤ 5 s); traffic that needs the node is lost while it is cut; its routes stay | %s from the other nodes | — | endpoints out of every Service %s s after the cut; back %s s after the heal | %s |\n",
			r.Partitions[0].Length, len(r.Partitions), lost(healthy), spread(out), spread(back), verdict)
	}
	if len(r.Hiccups) > 0 {
		flaps := 0
		var healthy, cut tally
		for _, p := range r.Hiccups {
			flaps += p.Flaps
			healthy.merge(p.Healthy)
			cut.merge(p.Cut)
		}
		verdict := "no flapping"
		if flaps > 0 {
			verdict = "**flapped**"
		}
		w("| a node partitioned for 1 s (%d times) | no endpoint changes (the renewal it holds up lands inside the 4 s Lease); requests that need the node may be lost for about the hiccup | %s from the other nodes, %s that need the node | %d | — | %s |\n",
			len(r.Hiccups), lost(healthy), lost(cut), flaps, verdict)
	}

	w("\n### Requests lost by kind of traffic (lost / sent; how they failed)\n\n")
	w("| fault | %s |\n|---|%s\n", strings.Join(classes, " | "), strings.Repeat("---|", len(classes)))
	row := func(name string, m map[string]tally) {
		var cells []string
		for _, c := range classes {
			t, ok := m[c]
			if !ok || t.Sent == 0 {
				cells = append(cells, "—")
				continue
			}
			cell := fmt.Sprintf("%d / %d", t.Lost, t.Sent)
			if t.Lost > 0 {
				cell += " (" + t.kinds() + ")"
			}
			cells = append(cells, cell)
		}
		w("| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	row("baseline (10 s)", r.Baseline)
	for _, f := range r.Faults {
		row(f.Name, f.Traffic)
	}
	for i, p := range r.Partitions {
		row(fmt.Sprintf("partition %d of %s, traffic not needing it", i+1, p.Node), p.HealthyByClass)
	}

	if len(r.Partitions) > 0 {
		w("\n### A node partitioned from the underlay: how long until its endpoints leave\n\n")
		w("`fjord lab fault partition NODE`: the underlay switch drops every frame to and from the node, its link to the store included (the lab's nodes reach etcd through the underlay, as real nodes do). Seconds from the cut; \"back\" columns from the heal. The endpoints controller's leader at the time of the cut is shown: when it is the cut node, another agent must first take over the election (same 4 s TTL).\n\n")
		w("| node | leader | cut for | unready in every Service | gone from every other node's proxy | last request lost from the other nodes | lost from the other nodes | of which sent 2 s after it had left every proxy | lost that need the node | routes to it on the others | ready again after the heal | in every proxy again |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range r.Partitions {
			routes := "stay"
			if !p.RoutesStay {
				routes = "removed"
			}
			w("| %s | %s | %.1f s | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", p.Node, p.Leader, p.Length, sec(p.Out), sec(p.ProxyOut),
				sec(p.LastLoss), lost(p.Healthy), len(p.Late), lost(p.Cut), routes, sec(p.Back), sec(p.ProxyBack))
		}
	}
	if len(r.Hiccups) > 0 {
		w("\n### A 1 s partition (a hiccup)\n\n")
		w("| node | cut for | endpoint readiness changes | lost from the other nodes | lost that need the node |\n|---|---|---|---|---|\n")
		for _, p := range r.Hiccups {
			w("| %s | %.2f s | %d | %s | %s |\n", p.Node, p.Length, p.Flaps, lost(p.Healthy), lost(p.Cut))
		}
	}
	var notes []string
	for _, f := range r.Faults {
		for _, n := range f.Notes {
			notes = append(notes, f.Name+": "+n)
		}
		if f.Others.Sent > 0 {
			notes = append(notes, fmt.Sprintf("%s: the other traffic (not through the ingress) meanwhile: %s", f.Name, lost(f.Others)))
		}
	}
	for i, p := range r.Partitions {
		if len(p.Late) > 0 {
			late := p.Late
			if len(late) > 6 {
				late = append(late[:6:6], "…")
			}
			notes = append(notes, fmt.Sprintf("partition %d of %s: lost from the other nodes after its endpoints had left every proxy: %s", i+1, p.Node, strings.Join(late, ", ")))
		}
	}
	if len(notes) > 0 {
		w("\n### Notes from the run\n\n")
		for _, n := range notes {
			w("- %s\n", n)
		}
	}
	return b.String()
}

func (f faultResult) verdict() string {
	t := sumClasses(f.Traffic)
	t.merge(f.Others)
	if f.ZeroLoss {
		if t.Lost == 0 && f.Flaps == 0 {
			return "as designed"
		}
		return "**not as designed**"
	}
	for k := range t.Kinds {
		if strings.HasPrefix(k, "HTTP") {
			return "**not as designed** (" + k + ")"
		}
	}
	return "as designed"
}

func sumClasses(m map[string]tally) tally { return sum(m) }

func lost(t tally) string {
	s := fmt.Sprintf("%d of %d", t.Lost, t.Sent)
	if t.Lost > 0 {
		s += " (" + t.kinds() + ")"
	}
	return s
}

func sec(v float64) string {
	switch {
	case v < 0:
		return "never"
	case v == 0:
		return "—"
	}
	return fmt.Sprintf("%.1f s", v)
}

// spread is "median (min–max)" in seconds; negative values stand for never.
func spread(v []float64) string {
	var seen []float64
	for _, x := range v {
		if x >= 0 {
			seen = append(seen, x)
		}
	}
	switch {
	case len(v) == 0:
		return "—"
	case len(seen) == 0:
		return "never"
	case len(seen) < len(v):
		return fmt.Sprintf("%s, never in %d of %d", spread(seen), len(v)-len(seen), len(v))
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.2f", v[0])
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", benchkit.Median(v), lo, hi)
}
