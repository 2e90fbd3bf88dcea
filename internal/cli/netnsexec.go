package cli

import (
	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/netnsexec"
)

// newNetnsExecCommand is the lab's way to start a process inside a namespace (the
// agents in node namespaces, pod processes in pod namespaces).
func newNetnsExecCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "netns-exec NETNS-PATH -- COMMAND [ARG...]",
		Short:  "Run a command inside a network namespace (replaces this process)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return netnsexec.Exec(args[0], args[1:], nil)
		},
	}
}
