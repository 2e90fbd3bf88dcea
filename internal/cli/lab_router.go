package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/lab"
)

func newLabRouterCommand(g *globals, name, runRoot *string) *cobra.Command {
	return &cobra.Command{
		Use:   "router [-- DAEMON-COMMAND...]",
		Short: "Ask the racked lab's router daemon (birdc or vtysh) something",
		Long: `Runs the control client of the lab's router daemon against its own socket in the
lab's state directory: birdc for BIRD, vtysh for FRR. Without arguments it shows the
BGP table.

  fjord lab router --name NAME -- show protocols          (BIRD)
  fjord lab router --name NAME -- -c 'show ip bgp summary'   (FRR)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := lab.Load(*runRoot, *name)
			if err != nil {
				return fmt.Errorf("lab %q is not up", *name)
			}
			if c.Racks < 2 {
				return fmt.Errorf("lab %q has no router (start it with --racks 2)", *name)
			}
			if len(args) == 0 {
				args = []string{"show", "route"}
				if c.Router == lab.RouterFRR {
					args = []string{"-c", "show ip bgp"}
				}
			}
			rc := c.RouterCommand(args...)
			rc.Stdout, rc.Stderr = g.streams.Out, g.streams.Err
			return rc.Run()
		},
	}
}
