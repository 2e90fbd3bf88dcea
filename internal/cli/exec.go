package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newExecCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "exec", Short: "TODO", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
