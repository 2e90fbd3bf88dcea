// Command bench-chaos measures what faults cost a 3-node lab under continuous traffic
// (fjord-chaos on 198.18.200.0/24, the embedded etcd):
//
//   - traffic: every stream sends a request every -period on a fixed schedule, each
//     with its own connection (a new flow) and a -request-timeout: pod to pod across
//     nodes (HTTP), ClusterIP TCP (HTTP) and UDP (echo) from a pod on every node,
//     NodePort from the host to every node, and HTTP through the ingress on n1 (two
//     Hosts). Pod traffic starts inside the pods' network namespaces;
//   - faults: the agent of every node killed with SIGKILL and restarted; the store
//     frozen with SIGSTOP and resumed; a node partitioned from the underlay, long and
//     for 1 s; 1,000 Ingress changes applied with `fjord apply`; 200 slowloris
//     connections against the ingress; a restart of the ingress process;
//   - for each: requests lost per kind of traffic, next to what the design promises,
//     and the time to recover (for a partition: when the node's endpoints left the
//     EndpointSlices and every other node's service proxy, and when they came back).
//
// It rewrites its section of docs/benchmarks.md (between the bench-chaos markers).
// Root only; traffic stays inside the lab's namespaces and its host link; every loop
// is bounded; the lab is removed on exit, failure or signal.
//
//	make build && go run ./bench/chaos -fjord bin/fjord
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

var (
	flagFjord     = flag.String("fjord", "bin/fjord", "the fjord binary the lab runs")
	flagDoc       = flag.String("doc", "docs/benchmarks.md", "document whose bench-chaos section is rewritten (\"\" = none)")
	flagTimeout   = flag.Duration("timeout", 25*time.Minute, "hard limit for the whole run")
	flagPeriod    = flag.Duration("period", 100*time.Millisecond, "time between two requests of one stream")
	flagReqTO     = flag.Duration("request-timeout", 2*time.Second, "a request not answered within this is lost")
	flagRounds    = flag.Int("rounds", 2, "rounds of agent restarts (each restarts every node's agent once)")
	flagFreeze    = flag.Duration("freeze", 60*time.Second, "how long etcd stays stopped")
	flagFreezes   = flag.Int("freezes", 1, "how many times etcd is frozen")
	flagPartition = flag.Duration("partition", 20*time.Second, "length of the long partitions")
	flagParts     = flag.Int("partitions", 3, "long partitions (alternating n3 and n2)")
	flagHiccups   = flag.Int("hiccups", 5, "1 s partitions")
	flagChanges   = flag.Int("changes", 1000, "Ingress changes applied one after the other")
	flagSlow      = flag.Int("slowloris", 200, "slowloris connections against the ingress")
	flagSlowFor   = flag.Duration("slowloris-for", 75*time.Second, "how long the slowloris connections are kept up")
	flagRestarts  = flag.Int("ingress-restarts", 3, "restarts of the ingress process")
	flagKeep      = flag.Bool("keep", false, "debugging: leave the lab up at the end (remove it with fjord lab down --name chaos)")
	flagOnly      = flag.String("only", "", "run only these faults (comma-separated: agent,etcd,partition,changes,slowloris,ingress-restart); the document is not written")
)

const (
	labName   = "chaos"
	labSubnet = "198.18.200.0/24"
)

func main() {
	flag.Parse()
	os.Exit(run())
}

func run() int {
	ctx, stop, fjord, err := benchkit.Start(*flagFjord, *flagTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-chaos:", err)
		return 2
	}
	defer stop()
	b := &bench{fjord: fjord, env: append(os.Environ(), "FJORD_ETCD_ENDPOINTS=unix:///run/fjord/"+labName+"/etcd.sock")}
	defer b.down()
	res := &results{Start: time.Now().UTC(), CPU: benchkit.CPUModel(), Kernel: benchkit.KernelRelease(),
		LoadStart: benchkit.LoadAvg(), Commit: benchkit.Commit("."), Period: *flagPeriod, Timeout: *flagReqTO}
	if err := b.do(ctx, res); err != nil {
		fmt.Fprintln(os.Stderr, "bench-chaos: FAILED:", err)
		return 1
	}
	res.End, res.LoadEnd = time.Now().UTC(), benchkit.LoadAvg()
	report := res.markdown()
	fmt.Println(report)
	if *flagDoc != "" && *flagOnly == "" {
		if err := benchkit.WriteSection(*flagDoc, "Faults under traffic", "bench-chaos", report); err != nil {
			fmt.Fprintln(os.Stderr, "bench-chaos: writing document:", err)
			return 1
		}
	}
	return 0
}

// logf prints progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
