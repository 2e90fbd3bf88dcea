package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/latency"
	"github.com/fjord-net/fjord/internal/resolve"
)

// latencyReport is what `fjord latency` prints.
type latencyReport struct {
	Nodes   []latency.Cell        `json:"nodes"`
	Pods    []latency.Cell        `json:"pods"`
	Overlay []latency.OverlayCost `json:"overlay"`
	Chain   []latency.Hop         `json:"chain,omitempty"`
	Total   *latency.Stats        `json:"chainTotal,omitempty"`
	Elapsed time.Duration         `json:"elapsedNs"`
}

func newLatencyCommand(g *globals) *cobra.Command {
	var output, pngPath, chain, from string
	var count int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "latency [--png FILE] [--chain SVC-A,SVC-B,...]",
		Short: "Round-trip matrix node×node and pod×pod (p50, p99, jitter, loss), overlay cost, call chains",
		Long: `Pings from every node to every other node (underlay) and from a pod on every node to
the pods on the others (overlay), COUNT probes per pair, and prints p50, p99, jitter
(mean difference between consecutive round trips) and loss, and per node pair what
the pod network adds over the underlay. --png writes the matrices as a heatmap.

--chain A,B,C measures a call chain through Services, as the seed describes latency
compounding: the first hop from --from POD (default: a pod outside A, else any) to Service A,
then from a pod behind A to Service B, and so on; each hop is TCP connect time (one
round trip through the Service's DNAT to an endpoint), and the chain's total is the
sum, probe by probe.

The agents also export node-to-node RTT continuously (fjord_node_rtt_seconds and
friends on metricsBindAddress, default 127.0.0.1:10249/metrics in each node).
This kernel has no netem, so the lab cannot add delay; it measures what there is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o: %q must be json (or nothing for text)", output)
			}
			if count < 1 || count > 10000 {
				return fmt.Errorf("--count: %d is outside 1..10000", count)
			}
			ctx := cmd.Context()
			start := time.Now()
			src := g.openSources(ctx, 3*time.Second)
			defer src.close()
			nodes, pods, err := src.nodesAndPods(ctx)
			if err != nil {
				return err
			}
			mc := latency.MatrixConfig{Count: count, Timeout: timeout}
			var rep latencyReport
			if chain != "" {
				if rep.Chain, rep.Total, err = chainHops(cmd, src, pods, chain, from, count, timeout); err != nil {
					return err
				}
			} else {
				nodeEPs, podEPs, nodeOf := matrixEndpoints(nodes, pods)
				if len(nodeEPs) < 2 {
					return errors.New("fewer than two nodes this machine can probe from")
				}
				rep.Nodes = latency.Matrix(ctx, nodeEPs, mc)
				rep.Pods = latency.Matrix(ctx, podEPs, mc)
				rep.Overlay = latency.OverlayCosts(rep.Nodes, rep.Pods, nodeOf)
				if pngPath != "" {
					if err := writeHeatmap(pngPath, nodeEPs, podEPs, rep); err != nil {
						return fmt.Errorf("--png: %w", err)
					}
				}
			}
			rep.Elapsed = time.Since(start)
			return g.emit(output, rep, src, func(w io.Writer) {
				printLatency(w, rep)
				if pngPath != "" {
					fmt.Fprintf(w, "heatmap: %s\n", pngPath)
				}
			})
		},
	}
	cmd.Flags().IntVar(&count, "count", 20, "probes per pair")
	cmd.Flags().DurationVar(&timeout, "timeout", 300*time.Millisecond, "how long to wait for each answer")
	cmd.Flags().StringVar(&pngPath, "png", "", "write the matrices as a PNG heatmap")
	cmd.Flags().StringVar(&chain, "chain", "", "comma-separated Services (NAME, NS/NAME, NAME:PORT) to measure as a call chain")
	cmd.Flags().StringVar(&from, "from", "", "pod the chain starts from")
	cmd.Flags().StringP("namespace", "n", "default", "namespace of --chain Services and --from")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for scripts")
	return cmd
}

// matrixEndpoints picks the nodes this machine can probe from and one pod per node.
func matrixEndpoints(nodes []resolve.Node, pods []resolve.Pod) (nodeEPs, podEPs []latency.Endpoint, nodeOf map[string]string) {
	nodeOf = map[string]string{}
	for _, n := range nodes {
		if n.Here && n.IP.IsValid() {
			nodeEPs = append(nodeEPs, latency.Endpoint{Name: n.Name, Node: n.Name, Netns: n.Netns, Addr: n.IP})
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Key() < pods[j].Key() })
	seen := map[string]bool{}
	for _, p := range pods {
		if p.Netns == "" || !p.IP.IsValid() || seen[p.Node] {
			continue
		}
		seen[p.Node] = true
		podEPs = append(podEPs, latency.Endpoint{Name: p.Key(), Node: p.Node, Netns: p.Netns, Addr: p.IP})
		nodeOf[p.Key()] = p.Node
	}
	return nodeEPs, podEPs, nodeOf
}

// chainHops resolves --chain into hops and measures them.
func chainHops(cmd *cobra.Command, src *sources, pods []resolve.Pod, chain, from string, count int, timeout time.Duration) ([]latency.Hop, *latency.Stats, error) {
	ctx := cmd.Context()
	ns, _ := cmd.Flags().GetString("namespace")
	podByIP := map[netip.Addr]resolve.Pod{}
	for _, p := range pods {
		podByIP[p.IP] = p
	}
	var hops []latency.Hop
	var prev *resolve.Pod
	if from != "" {
		p, err := resolve.FindPod(ctx, src, ns, from)
		if err != nil {
			return nil, nil, fmt.Errorf("--from: %w", err)
		}
		prev = &p
	}
	for i, ref := range strings.Split(chain, ",") {
		sps, err := resolve.FindServicePorts(ctx, src, ns, strings.TrimSpace(ref))
		if err != nil {
			return nil, nil, fmt.Errorf("--chain %s: %w", ref, err)
		}
		var sp = sps[0]
		for _, c := range sps {
			if c.Protocol == "TCP" {
				sp = c
				break
			}
		}
		if sp.Protocol != "TCP" || len(sp.ClusterIPs) == 0 {
			return nil, nil, fmt.Errorf("--chain %s: needs a TCP port with a cluster IP", ref)
		}
		if prev == nil { // the first hop starts from a pod that is not behind this Service
			behind := map[netip.Addr]bool{}
			for _, ep := range sp.Endpoints {
				behind[ep.IP] = true
			}
			for _, outside := range []bool{true, false} {
				for _, p := range pods {
					if prev == nil && p.Netns != "" && p.IP.IsValid() && (!outside || !behind[p.IP]) {
						pp := p
						prev = &pp
					}
				}
			}
			if prev == nil {
				return nil, nil, errors.New("--chain: no pod on this machine to start from (use --from)")
			}
		}
		if prev.Netns == "" {
			return nil, nil, fmt.Errorf("--chain hop %d: pod %s runs on another machine", i+1, prev.Key())
		}
		hops = append(hops, latency.Hop{From: prev.Key(), Netns: prev.Netns, To: fmt.Sprintf("%s/%s:%d", sp.Namespace, sp.Name, sp.Port),
			Dst: netip.AddrPortFrom(sp.ClusterIPs[0], sp.Port)})
		prev = nil
		for _, ep := range sp.Endpoints { // the next hop starts behind this Service
			if p, ok := podByIP[ep.IP]; ok && p.Netns != "" {
				pp := p
				prev = &pp
				break
			}
		}
		if prev == nil && i < len(strings.Split(chain, ","))-1 {
			return nil, nil, fmt.Errorf("--chain %s: none of its endpoints is a pod on this machine to call the next Service from", ref)
		}
	}
	hops, total := latency.Chain(ctx, hops, count, timeout)
	return hops, &total, nil
}

func printLatency(w io.Writer, r latencyReport) {
	table := func(title string, cells []latency.Cell) {
		if len(cells) == 0 {
			return
		}
		fmt.Fprintln(w, title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FROM\tTO\tP50\tP99\tJITTER\tLOSS")
		for _, c := range cells {
			if c.Err != "" {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tERROR %s\n", c.From, c.To, c.Err)
				continue
			}
			s := c.Stats
			if s.Received == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%.0f%% (%d/%d)\n", c.From, c.To, s.Loss, s.Sent-s.Received, s.Sent)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f%%\n", c.From, c.To, dur(s.P50), dur(s.P99), dur(s.Jitter), s.Loss)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	table("node × node (underlay, ICMP echo)", r.Nodes)
	table("pod × pod (overlay, ICMP echo)", r.Pods)
	if len(r.Overlay) > 0 {
		fmt.Fprintln(w, "overlay cost (pod p50 − node p50, per node pair)")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FROM\tTO\tNODE P50\tPOD P50\tADDED")
		for _, o := range r.Overlay {
			if o.Unavailable != "" {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t(%s)\n", o.From, o.To, o.Unavailable)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.From, o.To, dur(o.NodeP50), dur(o.PodP50), dur(o.Added))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if len(r.Chain) > 0 {
		fmt.Fprintln(w, "call chain (TCP connect through each Service)")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOP\tFROM\tTO\tP50\tP99\tLOSS")
		for i, h := range r.Chain {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%.0f%%%s\n", i+1, h.From, h.To, dur(h.Stats.P50), dur(h.Stats.P99), h.Stats.Loss, errNote(h.Err))
		}
		if r.Total != nil {
			fmt.Fprintf(tw, "total\t\t\t%s\t%s\t%.0f%%\n", dur(r.Total.P50), dur(r.Total.P99), r.Total.Loss)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nEvery hop adds its round trip: at 20 ms between nodes a %d-hop chain spends at least %d ms on the network alone.\n\n", len(r.Chain), 20*len(r.Chain))
	}
	fmt.Fprintf(w, "(%v)\n", r.Elapsed.Round(10*time.Millisecond))
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func dur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func writeHeatmap(path string, nodeEPs, podEPs []latency.Endpoint, r latencyReport) error {
	names := func(eps []latency.Endpoint) []string {
		var out []string
		for _, e := range eps {
			out = append(out, e.Name)
		}
		return out
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	panels := []latency.Panel{{Title: "node x node", Names: names(nodeEPs), Cells: r.Nodes}}
	if len(podEPs) > 1 {
		panels = append(panels, latency.Panel{Title: "pod x pod", Names: names(podEPs), Cells: r.Pods})
	}
	if err := latency.Heatmap(f, "fjord latency: p50 round trip; green <= 50us, red >= 20ms (log scale), grey = all probes lost ("+time.Now().Format(time.DateTime)+")", panels); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
