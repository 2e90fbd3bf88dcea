package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/mtu"
)

// errFindings makes a command exit non-zero after it printed its findings.
var errFindings = errors.New("problems found (see above)")

func newMTUCommand(g *globals) *cobra.Command {
	var output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "mtu [NODE-A NODE-B]",
		Short: "Find the path MTU between nodes and across the pod network, and any black holes",
		Long: `Sends don't-fragment ICMP probes between every pair of nodes (underlay) and between a
pod on each node (overlay), finds the largest size that crosses each path by binary
search, and compares it with the MTUs the nodes are configured with. A size that
vanishes with no ICMP "fragmentation needed" coming back is a black hole: big packets
(TLS handshakes, large responses) hang while small ones work. The output names the
pair, the MTU that works and the fix. Exits 1 when a path fails.

Probes are sent from inside each node's (and pod's) network namespace, so every node
this machine can enter is a source: all of a lab's; on a real node, the node itself.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return errors.New("give no nodes (the whole matrix) or two (both directions between them)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o: %q must be json (or nothing for text)", output)
			}
			ctx := cmd.Context()
			src := g.openSources(ctx, 3*time.Second)
			defer src.close()
			cfg := mtu.Config{Timeout: timeout}
			var err error
			if cfg.Nodes, cfg.Pods, err = src.nodesAndPods(ctx); err != nil {
				return err
			}
			if len(args) == 2 {
				cfg.A, cfg.B = args[0], args[1]
			}
			rep, err := mtu.Run(ctx, cfg)
			if err != nil {
				return err
			}
			return g.emitFindings(output, rep, src)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for scripts")
	cmd.Flags().DurationVar(&timeout, "timeout", 300*time.Millisecond, "how long to wait for each probe's answer")
	return cmd
}
