package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

type comparison struct {
	Case        string
	Fjord, Peer []float64 // seconds per run
}

type results struct {
	Start, End         time.Time
	CPU, Kernel        string
	LoadStart, LoadEnd string
	Commit             string
	MTU                []comparison
	Latency            comparison
	Probes             []probeCost
	Agents             []agentUse
}

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "_Written by `make bench-troubleshoot` (`bench/troubleshoot`) on %s, run time %s. Rerun to refresh; everything between the bench-troubleshoot markers is regenerated._\n\n",
		r.Start.Format("2006-01-02 15:04 UTC"), r.End.Sub(r.Start).Round(time.Second))
	fmt.Fprintf(&b, "Machine: %s, kernel %s, load average %s at the start and %s at the end; fjord %s. A 3-node vxlan lab (`fjord lab up`, one echo pod per node).\n\n",
		r.CPU, r.Kernel, r.LoadStart, r.LoadEnd, r.Commit)
	b.WriteString("### How long a full matrix takes\n\n")
	fmt.Fprintf(&b, "%d rounds, fjord and the peer alternating. The mtu matrix is 12 paths (6 ordered node pairs, underlay and overlay); the peer is the same binary search done with iputils `ping -M do -c1 -W1 -s SIZE` in each namespace, one pair after the other. The latency matrix is the same 12 pairs, 20 probes each; the peer is `ping -c 20 -i 0.01` per pair, one after the other.\n\n", len(r.Latency.Fjord))
	b.WriteString("| matrix | fjord median | fjord p90 | ping loop median | ratio (fjord / ping) |\n|---|---|---|---|---|\n")
	for _, c := range append(append([]comparison(nil), r.MTU...), r.Latency) {
		f, p := benchkit.Median(c.Fjord), benchkit.Median(c.Peer)
		fmt.Fprintf(&b, "| %s | %.2f s | %.2f s | %.2f s | %.2f |\n", c.Case, f, benchkit.Quantile(c.Fjord, 0.9), p, f/p)
	}
	b.WriteString("\nfjord probes all paths at once and waits 300 ms (twice) for a lost size; the loop waits 1 s per lost ping, one pair after the other.\n\n")
	b.WriteString("### What the agents' RTT probes cost\n\n")
	b.WriteString("Every agent sends one 40-byte UDP probe to each peer every 2 s and answers its peers' probes. Measured in one process: a prober at that interval plus one responder per peer on loopback (so the process handles exactly the packets one node of a full mesh does), against the same window idle.\n\n")
	b.WriteString("| peers | window | probes sent | CPU time | share of one core |\n|---|---|---|---|---|\n")
	for _, p := range r.Probes {
		fmt.Fprintf(&b, "| %d | %v | %d | %.3f s | %.3f%% |\n", p.Peers, p.Window, p.Probes, p.CPUSecs, 100*p.CPUSecs/p.Window.Seconds())
	}
	if len(r.Agents) > 0 {
		b.WriteString("\nFor scale, each lab agent's whole CPU use over the same window (probes, lease, resyncs, service proxy; an idle cluster):\n\n| node | CPU time | share of one core |\n|---|---|---|\n")
		w := r.Probes[0].Window.Seconds()
		for _, a := range r.Agents {
			fmt.Fprintf(&b, "| %s | %.3f s | %.3f%% |\n", a.Node, a.CPUSecs, 100*a.CPUSecs/w)
		}
	}
	if n := len(r.Probes); n > 0 {
		last := r.Probes[n-1]
		share := 100 * last.CPUSecs / last.Window.Seconds()
		verdict := "cheap enough to leave on"
		if share >= 1 {
			verdict = "not negligible at that size: raise the interval for big clusters"
		}
		fmt.Fprintf(&b, "\nThe cost grows with the number of peers (one packet each way per peer every 2 s); at %d peers it is %.3f%% of one core: %s.\n", last.Peers, share, verdict)
	}
	return b.String()
}
