package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/ingress/controller"
	"github.com/fjord-net/fjord/internal/ingress/server"
)

func newIngressCommand(g *globals) *cobra.Command {
	var (
		cfg       server.Config
		accessLog string
	)
	cmd := &cobra.Command{
		Use:   "ingress",
		Short: "Run the HTTP(S) ingress controller and proxy",
		Long: `Serve Kubernetes Ingress v1 objects from the store as an HTTP and HTTPS proxy,
configured by the ingress-nginx ConfigMap (the seed's nginx-configuration works as is).
Changes to Ingresses, Services, EndpointSlices, Secrets and the ConfigMap are applied
without reloads: open connections and in-flight requests are never dropped.

/metrics (Prometheus) and /healthz are served on --metrics-addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			log := g.logger()
			switch accessLog {
			case "":
			case "-":
				cfg.AccessLog = g.streams.Out
			default:
				f, err := os.OpenFile(accessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return fmt.Errorf("access log: %w", err)
				}
				defer f.Close()
				cfg.AccessLog = io.Writer(f)
			}
			st, closeStore, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			cfg.Store = st
			cfg.Logger = log
			cfg.SetMaxProcs = true
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.HTTPAddr, "http-addr", ":80", "address of the HTTP listener")
	f.StringVar(&cfg.HTTPSAddr, "https-addr", ":443", "address of the HTTPS listener")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", ":10254", "address serving /metrics and /healthz (empty = off)")
	f.StringVar(&cfg.ConfigMap, "configmap", controller.DefaultConfigMap, "namespace/name of the ingress-nginx ConfigMap")
	f.StringVar(&cfg.Class, "ingress-class", controller.DefaultClass, "ingress class to serve (IngressClasses with controller k8s.io/ingress-nginx or fjord.dev/ingress are served too)")
	f.StringVar(&accessLog, "access-log", "-", "access log file in log-format-upstream (- = stdout, empty = off)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	return cmd
}
