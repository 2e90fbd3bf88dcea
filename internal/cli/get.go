package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "get", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
