package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAgentCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "agent", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
