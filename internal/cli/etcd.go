package cli

import (
	"fmt"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/etcdserver"
)

func newEtcdCommand(g *globals) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run the embedded single-member etcd store on a unix socket",
		Long: `Runs fjord's embedded etcd member with its data in STATE-DIR/etcd and its client
endpoint on the unix socket STATE-DIR/etcd.sock, reachable from every network namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			sock := filepath.Join(stateDir, "etcd.sock")
			srv, err := etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(stateDir, "etcd"), ClientSocket: sock})
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(g.streams.Err, "etcd serving on %s\n", etcdserver.SocketEndpoint(sock))
			select {
			case <-ctx.Done():
				return nil
			case err := <-srv.Err():
				return err
			}
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", DefaultStateDir, "directory for the store's data and socket")
	return cmd
}
