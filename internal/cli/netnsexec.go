package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newNetnsExecCommand() *cobra.Command {
	return &cobra.Command{Use: "netns-exec", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not implemented") }}
}
