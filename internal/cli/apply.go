package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newApplyCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "apply", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
