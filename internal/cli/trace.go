package cli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/trace"
)

func newTraceCommand(g *globals) *cobra.Command {
	var o trace.Options
	var output string
	var noProbe bool
	var dump string
	var size int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "trace SRC DST",
		Short: "Show where a packet goes and where it dies: hop by hop, DELIVERED or DROPPED at NODE/PLACE with the reason and fix",
		Long: `Follows one flow from SRC to DST and reports every hop: namespace, device, decision.

  SRC  a pod (name, NS/NAME or IP) or a node (name or IP)
  DST  a pod (name or IP; --port for TCP/UDP, else ICMP), POD-IP:PORT, a Service (name,
       NS/NAME, NAME:PORT, CLUSTER-IP:PORT), a node (name or IP) or NODE:NODEPORT, or an
       ingress URL (http://NODE-IP/path, with --host for the Host header)

Two halves: the expected path from kernel state (routes, neighbours, FDB and the vxlan
device, fjord's service maps: which endpoints, which dispatch; listeners), compared with
what fjord wants there; and a live probe: a real packet (TCP SYN, ICMP echo or UDP)
from SRC's namespace, followed in every namespace this machine can enter by nftables
tracing (every chain and rule verdict of every table, fjord's or not) and by the
kernel's skb:kfree_skb tracepoint (drops outside netfilter: no route, MTU, rp_filter,
no listener). The verdict is DELIVERED, or DROPPED at NODE/PLACE: REASON with the fix.
Everything the trace adds (nft tables, the BPF program) is removed when it ends.

Examples:
  fjord trace echo-n1 echo                       # pod to Service
  fjord trace echo-n1 echo-n2 --port 8080        # pod to pod
  fjord trace n1 http://198.18.0.11/ --host web.lab.local
  fjord trace echo-n1 echo-n3 --size 1450        # a full-size DF ping: MTU black holes`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o: %q must be json (or nothing for text)", output)
			}
			if o.Proto != "" && o.Proto != "tcp" && o.Proto != "udp" && o.Proto != "icmp" {
				return fmt.Errorf("--proto: %q must be tcp, udp or icmp", o.Proto)
			}
			if o.Port < 0 || o.Port > 65535 {
				return fmt.Errorf("--port: %d is outside 1..65535", o.Port)
			}
			if size != 0 && (size < 28 || size > 65535) {
				return fmt.Errorf("--size: %d is outside 28..65535", size)
			}
			if timeout <= 0 || timeout > time.Minute {
				return fmt.Errorf("--timeout: %v is outside (0, 1m]", timeout)
			}
			// Interrupted traces still remove what they added.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			src := g.openSources(ctx, 3*time.Second)
			defer src.close()
			s, err := trace.ResolveSource(ctx, src, args[0], o)
			if err != nil {
				return err
			}
			t, err := trace.ResolveTarget(ctx, src, args[1], o)
			if err != nil {
				return err
			}
			nodes, pods, err := src.nodesAndPods(ctx)
			if err != nil {
				return err
			}
			req := trace.Request{Source: s, Target: t, Nodes: nodes, Pods: pods, Probe: !noProbe, Timeout: timeout, Size: size,
				VXLANPort: trace.VXLANPort(nodes)}
			var recs []trace.Recording
			if dump != "" {
				req.Dump = func(r trace.Recording) { recs = append(recs, r) }
				defer func() {
					if b, err := json.MarshalIndent(recs, "", " "); err == nil {
						_ = os.WriteFile(dump, b, 0o644)
					}
				}()
			}
			if c, ok := g.labOfEndpoints(); ok {
				req.Extra = append(req.Extra, trace.Place{Name: "underlay switch", Netns: filepath.Join("/run/netns", c.UnderlayNS()), Bridge: true})
			}
			results := []trace.Result{}
			res, err := trace.Run(ctx, req)
			if err != nil {
				return err
			}
			results = append(results, res)
			// An ingress URL: the second leg, from the ingress's node to a backend endpoint.
			if in := t.Ingress; in != nil && res.Verdict.Outcome == "DELIVERED" && t.Node != nil {
				if len(in.Service.Endpoints) == 0 {
					res2 := trace.Result{Source: "ingress on " + t.Node.Name, Target: "service " + in.Service.Namespace + "/" + in.Service.Name,
						Verdict: trace.Verdict{Outcome: "DROPPED", Text: fmt.Sprintf("DROPPED at %s/ingress: backend %s/%s has no ready endpoints (the ingress answers 503)", t.Node.Name, in.Service.Namespace, in.Service.Name),
							Fix: "make the Service's selector match Ready pods"}}
					results = append(results, res2)
				} else {
					ep := in.Service.Endpoints[0]
					req2 := req
					req2.Source = trace.Source{Name: "node " + t.Node.Name + " (ingress)", Node: *t.Node, Netns: t.Node.Netns, IP: t.Node.IP}
					req2.Target = trace.Target{Kind: "pod", Name: fmt.Sprintf("backend %s/%s endpoint %v", in.Service.Namespace, in.Service.Name, ep.AddrPort()),
						Proto: "tcp", Addr: netip.AddrPortFrom(ep.IP, ep.Port)}
					res2, err := trace.Run(ctx, req2)
					if err != nil {
						return err
					}
					results = append(results, res2)
				}
			}
			if output == "json" {
				enc := json.NewEncoder(g.streams.Out)
				enc.SetIndent("", "  ")
				if len(results) == 1 {
					return finish(enc.Encode(results[0]), results)
				}
				return finish(enc.Encode(results), results)
			}
			g.noteStore(src)
			for i, r := range results {
				if i > 0 {
					fmt.Fprintln(g.streams.Out, "\n--- second leg: the ingress proxy to the backend ---")
				}
				r.Print(g.streams.Out)
			}
			return finish(nil, results)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", "default", "namespace of pod and Service names")
	f.IntVar(&o.Port, "port", 0, "destination port for a pod or node DST (TCP unless --proto)")
	f.StringVar(&o.Proto, "proto", "", "tcp, udp or icmp (default: from the Service, tcp with a port, else icmp)")
	f.StringVar(&o.Host, "host", "", "Host header for an ingress URL")
	f.IntVar(&size, "size", 0, "ICMP/UDP probe size in bytes (ICMP with a size is sent with don't-fragment)")
	f.DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for the answer")
	f.BoolVar(&noProbe, "no-probe", false, "only read the expected path from kernel state; send nothing")
	f.StringVarP(&output, "output", "o", "", "json for scripts")
	f.StringVar(&dump, "dump", "", "write the raw trace events to this file (JSON), for a bug report")
	return cmd
}

// finish makes the command exit 1 unless every leg was delivered (or only expected).
func finish(err error, results []trace.Result) error {
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Verdict.Outcome != "DELIVERED" && r.Verdict.Outcome != "EXPECTED" {
			return errFindings
		}
	}
	return nil
}
