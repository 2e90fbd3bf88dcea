// Command bench-troubleshoot measures what the troubleshooting tools cost on a 3-node
// lab (fjord-benchts on 198.18.173.0/24):
//
//   - how long a full `fjord mtu` matrix takes (12 paths: 6 node pairs, underlay and
//     overlay), on a healthy lab and with an MTU black hole (lost probes cost timeouts),
//     against the same binary search done the usual way, with iputils `ping -M do` in
//     each namespace, pair after pair;
//   - how long a full `fjord latency` matrix takes (node×node and pod×pod, 20 probes a
//     pair) against `ping -c 20 -i 0.01` pair after pair;
//   - the CPU the agents' continuous RTT probes cost a node: a prober and responders
//     at the agent's default interval (2 s), in this process, measured against the same
//     process idle, for 2 peers (this lab) and 99 peers (a 100-node cluster); and the
//     lab agents' own CPU use over the same time, probes included.
//
// Runs alternate fjord and the peer, several rounds; medians and ratios are reported.
// It rewrites its section of docs/benchmarks.md (between the bench-troubleshoot
// markers). Root only; traffic stays inside the lab's namespaces and loopback; every
// loop is bounded; the lab is removed on exit, failure or signal.
//
//	make build && go run ./bench/troubleshoot -fjord bin/fjord
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

var (
	flagFjord   = flag.String("fjord", "bin/fjord", "the fjord binary the lab runs")
	flagRounds  = flag.Int("rounds", 5, "rounds (each runs fjord and the peer once)")
	flagWindow  = flag.Duration("window", 60*time.Second, "how long the RTT prober's CPU is measured")
	flagDoc     = flag.String("doc", "docs/benchmarks.md", "document whose bench-troubleshoot section is rewritten (\"\" = none)")
	flagTimeout = flag.Duration("timeout", 20*time.Minute, "hard limit for the whole run")
)

const (
	labName   = "benchts"
	labSubnet = "198.18.173.0/24"
)

func main() {
	flag.Parse()
	os.Exit(run())
}

func run() int {
	ctx, stop, fjord, err := benchkit.Start(*flagFjord, *flagTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-troubleshoot:", err)
		return 2
	}
	defer stop()
	b := &bench{fjord: fjord, env: append(os.Environ(), "FJORD_ETCD_ENDPOINTS=unix:///run/fjord/"+labName+"/etcd.sock")}
	defer b.down()
	res := &results{Start: time.Now().UTC(), CPU: benchkit.CPUModel(), Kernel: benchkit.KernelRelease(), LoadStart: benchkit.LoadAvg(), Commit: benchkit.Commit(".")}
	if err := b.do(ctx, res); err != nil {
		fmt.Fprintln(os.Stderr, "bench-troubleshoot: FAILED:", err)
		return 1
	}
	res.End, res.LoadEnd = time.Now().UTC(), benchkit.LoadAvg()
	report := res.markdown()
	fmt.Println(report)
	if *flagDoc != "" {
		if err := benchkit.WriteSection(*flagDoc, "Troubleshooting tools", "bench-troubleshoot", report); err != nil {
			fmt.Fprintln(os.Stderr, "bench-troubleshoot: writing document:", err)
			return 1
		}
	}
	return 0
}
