package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/fjord-net/fjord/internal/doctor"
)

func newDoctorCommand(g *globals) *cobra.Command {
	var output, node, etcdDataDir string
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "doctor [--node NODE]",
		Short: "Check every node and the store, line by line: PASS, WARN or FAIL with evidence and fix",
		Long: `Runs a checklist on every node this machine can enter (all of a lab's; on a real node,
the node itself) and on the cluster's shared parts:

  kernel     vxlan, nftables, conntrack, BPF and BTF; IPVS absent means fjord's nftables
             dispatch runs instead
  sysctl     forwarding, rp_filter, bridge-nf-call-*, conntrack table fill
  mtu        underlay, vxlan device and pod MTUs fit each other and agree across nodes
  offload    VXLAN segmentation and checksum offloads
  firewall   foreign nftables rules that drop traffic (and ICMP path-MTU discovery needs)
  agent      liveness, and whether the kernel's routes/neighbours/FDB match the store
  proxy      whether the service proxy's table dispatches what the store says
  conntrack  entries still sending traffic to endpoints a Service no longer has
  peers      every other node answers, small and full-size, underlay and overlay
  cpu        busy processes in a node's namespace (noisy neighbours), steal and softirq
  services   Services without endpoints
  clock      clock offset between nodes (measured against the agents' RTT responders)
  etcd       WAL fsync p99 (etcd's guidance: under 10 ms; FAIL from 100 ms, the default
             heartbeat interval) from the member's metrics and a
             direct fdatasync probe of its data directory; leader, leader changes, size

Exits 1 when any check FAILs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o: %q must be json (or nothing for text)", output)
			}
			if window <= 0 || window > time.Minute {
				return fmt.Errorf("--window: %v is outside (0, 1m]", window)
			}
			ctx := cmd.Context()
			src := g.openSources(ctx, 3*time.Second)
			defer src.close()
			cfg := doctor.Config{Only: node, Window: window, ClockSkew: clockSkew}
			var err error
			if cfg.Nodes, cfg.Pods, err = src.nodesAndPods(ctx); err != nil {
				return err
			}
			if src.store != nil {
				if cfg.Services, err = src.ServicePorts(ctx); err == nil {
					cfg.StoreUp = src.RemoteErr() == nil
				}
			}
			cfg.Etcd = g.etcdTarget(etcdDataDir)
			rep, err := doctor.Run(ctx, cfg)
			if err != nil {
				return err
			}
			return g.emitFindings(output, rep, src)
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "check only this node (the cluster and etcd sections still run)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for scripts")
	cmd.Flags().DurationVar(&window, "window", time.Second, "how long CPU use is sampled")
	cmd.Flags().StringVar(&etcdDataDir, "etcd-data-dir", "", "data directory of an etcd member on this machine, for the fdatasync probe (default: the lab's or the embedded store's)")
	return cmd
}

// etcdTarget says how doctor reaches the store's members: their /metrics over the same
// endpoints and TLS settings the store client uses.
func (g *globals) etcdTarget(dataDir string) *doctor.EtcdTarget {
	eps := g.resolvedEndpoints()
	if c, _, ok := g.kubernetesLab(); ok {
		// A Kubernetes lab keeps no store of fjord's: check the API server's etcd.
		eps = []string{"unix://" + c.KubeEtcdSocket()}
	}
	t := &doctor.EtcdTarget{Endpoints: eps, DataDir: dataDir}
	if dataDir == "" {
		for _, ep := range eps {
			if sock, ok := strings.CutPrefix(ep, "unix://"); ok {
				// The embedded store keeps its data next to its socket (lab and agent).
				if d := filepath.Join(filepath.Dir(sock), "etcd"); isDir(d) {
					t.DataDir = d
				}
			}
		}
	}
	var tlsInfo *transport.TLSInfo
	if g.etcd.CACert != "" || g.etcd.Cert != "" {
		tlsInfo = &transport.TLSInfo{TrustedCAFile: g.etcd.CACert, CertFile: g.etcd.Cert, KeyFile: g.etcd.Key}
	}
	t.Fetch = func(ctx context.Context, ep string) (string, error) {
		tr := &http.Transport{}
		url := strings.TrimSuffix(ep, "/") + "/metrics"
		if sock, ok := strings.CutPrefix(ep, "unix://"); ok {
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}
			url = "http://localhost/metrics"
		} else if tlsInfo != nil {
			cfg, err := tlsInfo.ClientConfig()
			if err != nil {
				return "", err
			}
			tr.TLSClientConfig = cfg
		}
		defer tr.CloseIdleConnections()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %s", resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		return string(b), err
	}
	return t
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
