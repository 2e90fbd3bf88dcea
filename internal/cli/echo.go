package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newEchoCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "echo", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
