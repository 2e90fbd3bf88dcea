// Package cli is fjord's command line: one file per subcommand, each a thin layer that
// parses flags into a Config and calls the package that does the work.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/store"
)

// Streams are the command's standard streams, injected so commands are testable.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// DefaultStateDir is where a real node keeps fjord's state (embedded etcd, IPAM).
const DefaultStateDir = "/var/lib/fjord"

// DefaultLabSocket is the store socket of the default lab, tried when nothing else is
// configured so that `fjord get pods` just works after `make lab`.
const DefaultLabSocket = "/run/fjord/lab/etcd.sock"

// globals holds the flags every command shares.
type globals struct {
	streams    Streams
	etcd       store.ClientConfig
	logLevel   string
	endpoints  string
	kubeconfig string
}

// NewRoot builds the fjord command tree.
func NewRoot(streams Streams) *cobra.Command {
	g := &globals{streams: streams}
	root := &cobra.Command{
		Use:   "fjord",
		Short: "fjord: a Kubernetes networking data plane you can see into",
		Long: `fjord is a pod network (CNI plugin and node agent), a service proxy, an ingress
proxy and a set of troubleshooting tools in one binary, with its state in etcd.

Start with 'fjord lab up' for a local multi-node cluster of network namespaces.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.endpoints, "etcd-endpoints", "", "comma-separated etcd client URLs (unix:///path, https://host:2379); default: $FJORD_ETCD_ENDPOINTS, else the local embedded store, else the default lab's")
	pf.StringVar(&g.etcd.CACert, "etcd-cacert", "", "CA certificate (PEM) to verify the etcd servers")
	pf.StringVar(&g.etcd.Cert, "etcd-cert", "", "client certificate (PEM) for etcd")
	pf.StringVar(&g.etcd.Key, "etcd-key", "", "client key (PEM) for etcd")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "read objects from this Kubernetes API server instead of fjord's store (get, exec); default $KUBECONFIG, else the default lab's when it runs Kubernetes")

	root.AddCommand(
		newApplyCommand(g),
		newGetCommand(g),
		newDeleteCommand(g),
		newEtcdCommand(g),
		newAgentCommand(g),
		newLabCommand(g),
		newBGPCommand(g),
		newExecCommand(g),
		newMTUCommand(g),
		newDoctorCommand(g),
		newLatencyCommand(g),
		newTraceCommand(g),
		newEchoCommand(g),
		newIngressCommand(g),
		newNetnsExecCommand(),
		newVersionCommand(g),
	)
	return root
}

// resolvedEndpoints applies the default order: flag, environment, local embedded store,
// default lab.
func (g *globals) resolvedEndpoints() []string {
	if g.endpoints != "" {
		return splitList(g.endpoints)
	}
	if env := os.Getenv("FJORD_ETCD_ENDPOINTS"); env != "" {
		return splitList(env)
	}
	local := filepath.Join(DefaultStateDir, "etcd.sock")
	if _, err := os.Stat(local); err == nil {
		return []string{etcdserver.SocketEndpoint(local)}
	}
	return []string{etcdserver.SocketEndpoint(DefaultLabSocket)}
}

// connect opens the store. The returned close function must be called.
func (g *globals) connect(ctx context.Context) (*store.Store, func(), error) {
	cfg := g.etcd
	cfg.Endpoints = g.resolvedEndpoints()
	for _, ep := range cfg.Endpoints {
		if sock, ok := strings.CutPrefix(ep, "unix://"); ok && len(cfg.Endpoints) == 1 {
			if _, err := os.Stat(sock); err != nil {
				return nil, nil, fmt.Errorf("no store at %s (the socket does not exist): start one with 'fjord lab up', 'fjord etcd' or 'fjord agent', or point --etcd-endpoints / $FJORD_ETCD_ENDPOINTS at yours", ep)
			}
		}
	}
	cli, err := store.Connect(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return store.New(cli, ""), func() { cli.Close() }, nil
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(g.streams.Err, &slog.HandlerOptions{Level: lvl}))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ExitCode is an error that carries the exit status a command should end with (a
// wrapped program's, say) and has already said what went wrong.
type ExitCode int

func (e ExitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func exitCode(n int) error { return ExitCode(n) }
