package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "delete", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
