package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/lab"
	"github.com/fjord-net/fjord/internal/nodestate"
)

func newBGPCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bgp", Short: "BGP mode: the nodes' speakers (docs/bgp.md)"}
	var labName, runRoot, node, output string
	var sockets []string
	status := &cobra.Command{
		Use:   "status",
		Short: "Every BGP session of every node: peer, AS, state, uptime, prefixes, last error",
		Long: `Reads each node agent's BGP speaker through its status socket (RUN-DIR/bgp.sock, a
unix socket only root can open) and prints one line per session, as 'calicoctl node
status' and 'birdc show protocols' do.

Which speakers: --socket PATH (repeatable); else every node of the lab --lab names (the
default lab when it is up); else this machine's agent (/run/fjord/bgp.sock).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets, err := bgpSockets(runRoot, labName, cmd.Flags().Changed("lab"), sockets)
			if err != nil {
				return err
			}
			if node != "" {
				sock, ok := targets[node]
				if !ok {
					return fmt.Errorf("--node: %q is not one of %v", node, keys(targets))
				}
				targets = map[string]string{node: sock}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			var sts []bgp.Status
			var errs []error
			for _, n := range keys(targets) {
				st, err := bgp.Query(ctx, targets[n])
				if err != nil {
					errs = append(errs, fmt.Errorf("node %s: %w", n, err))
					continue
				}
				if st.Node == "" {
					st.Node = n
				}
				sts = append(sts, st)
			}
			switch output {
			case "json":
				enc := json.NewEncoder(g.streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(sts); err != nil {
					return err
				}
			case "":
				bgp.PrintTable(g.streams.Out, sts, time.Now())
			default:
				return fmt.Errorf("-o: %q is not json (or empty for the table)", output)
			}
			return errors.Join(errs...)
		},
	}
	f := status.Flags()
	f.StringVar(&labName, "lab", "lab", "the lab whose nodes to read")
	f.StringVar(&runRoot, "run-root", "/run/fjord", "the lab's run root")
	f.StringVar(&node, "node", "", "only this node")
	f.StringArrayVar(&sockets, "socket", nil, "a speaker's status socket (repeatable)")
	f.StringVarP(&output, "output", "o", "", "json for the raw status")
	cmd.AddCommand(status)
	return cmd
}

// bgpSockets maps node names to status sockets.
func bgpSockets(runRoot, labName string, labAsked bool, sockets []string) (map[string]string, error) {
	out := map[string]string{}
	if len(sockets) > 0 {
		for _, s := range sockets {
			out[filepath.Base(filepath.Dir(filepath.Dir(s)))+":"+s] = s
		}
		return out, nil
	}
	c, err := lab.Load(runRoot, labName)
	if err == nil {
		for i := 1; i <= c.Nodes; i++ {
			out[c.NodeName(i)] = filepath.Join(c.NodeRunDir(i), bgp.SocketName)
		}
		return out, nil
	}
	if labAsked {
		return nil, fmt.Errorf("lab %q is not up", labName)
	}
	local := filepath.Join(nodestate.DefaultRunDir, bgp.SocketName)
	if _, err := os.Stat(local); err != nil {
		return nil, fmt.Errorf("no lab is up and no agent runs in bgp mode here (%s does not exist); pass --socket", local)
	}
	host, _ := os.Hostname()
	out[host] = local
	return out, nil
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
