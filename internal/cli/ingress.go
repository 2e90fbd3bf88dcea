package cli

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/ingress/controller"
	"github.com/fjord-net/fjord/internal/ingress/server"
	"github.com/fjord-net/fjord/internal/ingress/status"
	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/leader"
	"github.com/fjord-net/fjord/internal/source"
)

// ingressLeaseName is the coordination Lease the ingress processes elect their one
// status writer on (in the pod's namespace, or the ConfigMap's).
const ingressLeaseName = "fjord-ingress-leader"

type ingressFlags struct {
	accessLog, publishAddr, electionNS string
	updateStatus                       bool
}

func newIngressCommand(g *globals) *cobra.Command {
	var (
		cfg server.Config
		f   ingressFlags
	)
	cmd := &cobra.Command{
		Use:   "ingress",
		Short: "Run the HTTP(S) ingress controller and proxy",
		Long: `Serve Kubernetes Ingress v1 objects as an HTTP and HTTPS proxy, configured by the
ingress-nginx ConfigMap (the seed's nginx-configuration works as is). Changes to
Ingresses, Services, EndpointSlices, Secrets and the ConfigMap are applied without
reloads: open connections and in-flight requests are never dropped.

Objects come from the Kubernetes API (--kubeconfig, or the service account inside a
pod) or from fjord's store. One ingress process, elected on the Lease
fjord-ingress-leader, writes status.loadBalancer of the Ingresses served: the
--publish-status-address list, else (in a pod) the host IPs of this workload's pods,
else the --http-addr IP.

/metrics (Prometheus) and /healthz are served on --metrics-addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			log := g.logger()
			var err error
			if cfg.MetricsAddr, err = helperListenAddr("--metrics-addr", cfg.MetricsAddr); err != nil {
				return err
			}
			switch f.accessLog {
			case "":
			case "-":
				cfg.AccessLog = g.streams.Out
			default:
				file, err := os.OpenFile(f.accessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return fmt.Errorf("access log: %w", err)
				}
				defer file.Close()
				cfg.AccessLog = io.Writer(file)
			}
			identity := os.Getenv("POD_NAME")
			if identity == "" {
				host, _ := os.Hostname()
				identity = fmt.Sprintf("%s-%d", host, os.Getpid())
			}
			leaseNS := f.electionNS
			if leaseNS == "" {
				leaseNS = os.Getenv("POD_NAMESPACE")
			}
			if leaseNS == "" {
				leaseNS, _, _ = strings.Cut(cfg.ConfigMap, "/")
			}
			var st status.Config
			if kc, ok := ingressKubernetesMode(g, f); ok {
				rc, err := kubeclient.Config(kc)
				if err != nil {
					return err
				}
				client, err := kubeclient.New(rc, "ingress")
				if err != nil {
					return err
				}
				cfg.Source = source.New(source.NewKubernetes(client), 0)
				st = status.Config{Lock: leader.KubeLock(client, leaseNS, ingressLeaseName, identity), Writer: status.KubeWriter{Client: client}}
				if pod := os.Getenv("POD_NAME"); pod != "" && f.publishAddr == "" {
					pods := cfg.Source.Pods(source.InNamespace(leaseNS))
					st.Addresses, st.Changes = status.PodHostIPs(pods, leaseNS, pod), pods
				}
			} else {
				s, closeStore, err := g.connect(ctx)
				if err != nil {
					return err
				}
				defer closeStore()
				cfg.Source = source.New(source.NewStore(s), 0)
				st = status.Config{Lock: leader.StoreLock(s, leaseNS, ingressLeaseName, identity), Writer: status.StoreWriter{Store: s}}
			}
			if f.updateStatus {
				if st.Addresses == nil {
					if addrs, err := publishAddresses(f.publishAddr, cfg.HTTPAddr); err != nil {
						log.Warn("Ingress status is not written", "reason", err)
					} else {
						st.Addresses = status.Static(addrs)
					}
				}
				if st.Addresses != nil {
					cfg.Status = &st
				}
			}
			cfg.Logger = log
			cfg.SetMaxProcs = true
			if rev := buildRevision(); rev != "(devel)" {
				cfg.ServerHeader = "fjord/" + rev // sent only with server-tokens: true
			}
			return server.Run(ctx, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.HTTPAddr, "http-addr", ":80", "address of the HTTP listener")
	fl.StringVar(&cfg.HTTPSAddr, "https-addr", ":443", "address of the HTTPS listener")
	fl.StringVar(&cfg.MetricsAddr, "metrics-addr", "127.0.0.1:10254", "address serving /metrics and /healthz (empty = off; a bare :PORT is loopback, 0.0.0.0:PORT every interface)")
	fl.StringVar(&cfg.ConfigMap, "configmap", controller.DefaultConfigMap, "namespace/name of the ingress-nginx ConfigMap")
	fl.StringVar(&cfg.Class, "ingress-class", controller.DefaultClass, "ingress class to serve (IngressClasses with controller k8s.io/ingress-nginx or fjord.dev/ingress are served too)")
	fl.StringVar(&f.accessLog, "access-log", "-", "access log file in log-format-upstream (- = stdout, empty = off)")
	fl.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	fl.BoolVar(&f.updateStatus, "update-status", true, "write status.loadBalancer of the Ingresses served (one elected writer)")
	fl.StringVar(&f.publishAddr, "publish-status-address", "", "comma-separated addresses (IPs or host names) to write into Ingress status")
	fl.StringVar(&f.electionNS, "election-namespace", "", "namespace of the status writer's Lease (default: $POD_NAMESPACE, else the ConfigMap's)")
	return cmd
}

func ingressKubernetesMode(g *globals, f ingressFlags) (string, bool) {
	if g.kubeconfig != "" {
		return g.kubeconfig, true
	}
	if g.endpoints != "" || os.Getenv("FJORD_ETCD_ENDPOINTS") != "" {
		return "", false
	}
	return "", kubeclient.InCluster()
}

// publishAddresses is --publish-status-address, else the --http-addr IP when it names
// one; a wildcard listener says nothing about where clients reach it.
func publishAddresses(flag, httpAddr string) ([]string, error) {
	if flag != "" {
		return status.SplitAddresses(flag), nil
	}
	host, _, err := net.SplitHostPort(httpAddr)
	if ip, perr := netip.ParseAddr(host); err == nil && perr == nil && !ip.IsUnspecified() {
		return []string{ip.String()}, nil
	}
	return nil, fmt.Errorf("--publish-status-address: needed to write Ingress status when --http-addr (%s) names no address (or --update-status=false)", httpAddr)
}
