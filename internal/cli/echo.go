package cli

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/echo"
)

func newEchoCommand(g *globals) *cobra.Command {
	var cfg echo.Config
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve HTTP, TCP and UDP echo, reporting pod, node and the client address seen",
		Long: `A small server for lab pods. HTTP answers with the pod's name, its node and the
client address it saw (add ?format=json for JSON); TCP echoes bytes back; UDP replies
with the same identity line and the payload. Identity comes from the flags or from
POD_NAME, POD_NAMESPACE and NODE_NAME, which the lab sets.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return echo.Serve(ctx, echo.FromEnv(cfg), g.logger())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Pod, "pod", "", "pod name to report (default $POD_NAME)")
	f.StringVar(&cfg.Namespace, "namespace", "", "namespace to report (default $POD_NAMESPACE)")
	f.StringVar(&cfg.Node, "node", "", "node to report (default $NODE_NAME)")
	f.IntVar(&cfg.HTTPPort, "http", 8080, "HTTP port (0 = off)")
	f.IntVar(&cfg.TCPPort, "tcp", 9000, "TCP echo port (0 = off)")
	f.IntVar(&cfg.UDPPort, "udp", 9000, "UDP echo port (0 = off)")
	return cmd
}
