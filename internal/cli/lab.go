package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newLabCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "lab", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
