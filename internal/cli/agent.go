package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/cni"
	"github.com/fjord-net/fjord/internal/endpoints"
	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/store"
)

type agentFlags struct {
	nodeName, mode, clusterCIDR, iface, nodeIP string
	nodeCIDRSize, mtu, vni, port               int
	runDir, cniConfDir, cniDataDir, stateDir   string
	leaseTTL, resync                           time.Duration
	proxyConfig                                string
	endpointsController                        bool
}

func newAgentCommand(g *globals) *cobra.Command {
	host, _ := os.Hostname()
	f := agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: register the node, claim a pod CIDR, program the pod network",
		Long: `Runs fjord's node agent. It registers this node in the store, claims a pod CIDR
with a compare-and-swap, keeps a liveness lease, writes the node's pod network for the
CNI plugin (RUN-DIR/node.json and a CNI config), and keeps the kernel's routes, neighbour
and FDB entries equal to what all Nodes call for. Restarting it never flushes anything.

Without --etcd-endpoints (or $FJORD_ETCD_ENDPOINTS) it runs an embedded etcd member in
STATE-DIR, so a single machine needs nothing else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodeName, "node-name", host, "this node's name")
	fl.StringVar(&f.mode, "mode", "vxlan", "pod network mode: vxlan or routed")
	fl.StringVar(&f.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod network of the whole cluster")
	fl.IntVar(&f.nodeCIDRSize, "node-cidr-size", 24, "prefix length of each node's pod CIDR")
	fl.StringVar(&f.iface, "iface", "", "underlay interface (default: the default route's, or the only one with an address)")
	fl.StringVar(&f.nodeIP, "node-ip", "", "underlay address (default: the interface's first)")
	fl.IntVar(&f.mtu, "mtu", 0, "pod MTU (default: underlay MTU minus 50 for vxlan)")
	fl.IntVar(&f.vni, "vni", 1, "vxlan network identifier")
	fl.IntVar(&f.port, "vxlan-port", 8472, "vxlan UDP port")
	fl.StringVar(&f.runDir, "run-dir", nodestate.DefaultRunDir, "where node.json is written for the CNI plugin")
	fl.StringVar(&f.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "where the CNI network config is written (\"\" = don't)")
	fl.StringVar(&f.cniDataDir, "cni-data-dir", "/var/lib/cni/networks", "where the CNI plugin keeps IP allocations")
	fl.StringVar(&f.stateDir, "state-dir", DefaultStateDir, "embedded store's directory (used without --etcd-endpoints)")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 15*time.Second, "node liveness lease; a node silent this long is NotReady")
	fl.DurationVar(&f.resync, "resync", 30*time.Second, "full reconcile period (repairs drift)")
	fl.BoolVar(&f.endpointsController, "endpoints-controller", true, "take part in electing the one EndpointSlice writer of the cluster")
	fl.StringVarP(&f.proxyConfig, "config", "c", "", "KubeProxyConfiguration file for the service proxy (mode, ipvs.scheduler, syncPeriod, ...)")
	return cmd
}

func (f agentFlags) config() (agent.Config, error) {
	cfg := agent.Config{NodeName: f.nodeName, Mode: podnet.Mode(f.mode), NodeCIDRBits: f.nodeCIDRSize, Iface: f.iface,
		MTU: f.mtu, VNI: f.vni, Port: f.port, RunDir: f.runDir, LeaseTTL: f.leaseTTL, Resync: f.resync}
	var err error
	if cfg.ClusterCIDR, err = netip.ParsePrefix(f.clusterCIDR); err != nil {
		return cfg, fmt.Errorf("--cluster-cidr: %w", err)
	}
	if f.nodeIP != "" {
		if cfg.NodeIP, err = netip.ParseAddr(f.nodeIP); err != nil {
			return cfg, fmt.Errorf("--node-ip: %w", err)
		}
	}
	return cfg, cfg.Validate()
}

func runAgent(ctx context.Context, g *globals, f agentFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	proxyCfg, err := loadProxyConfig(f.proxyConfig)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := g.logger()
	if notice := proxyCfg.Notice(kernel.HasIPVS()); notice != "" {
		log.Warn(notice)
	}

	if g.endpoints == "" && os.Getenv("FJORD_ETCD_ENDPOINTS") == "" {
		sock := filepath.Join(f.stateDir, "etcd.sock")
		srv, err := etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(f.stateDir, "etcd"), ClientSocket: sock})
		if err != nil {
			return err
		}
		defer srv.Close()
		g.endpoints = etcdserver.SocketEndpoint(sock)
		log.Info("embedded etcd", "endpoint", g.endpoints)
	}
	cc := g.etcd
	cc.Endpoints = g.resolvedEndpoints()
	cli, err := store.Connect(ctx, cc)
	if err != nil {
		return err
	}
	defer cli.Close()

	st := store.New(cli, "")
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.endpointsController {
		ec, err := endpoints.New(st, endpoints.Config{Identity: cfg.NodeName}, log)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = ec.Run(ctx) }()
	}

	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	a, err := agent.New(cfg, agent.Deps{
		Store:  st,
		Kernel: kernel.New(h),
		Log:    log,
		Publish: func(n nodestate.NodeNetwork) error {
			if err := nodestate.Write(f.runDir, n); err != nil {
				return err
			}
			if f.cniConfDir == "" {
				return nil
			}
			conf, err := cni.ConfList("fjord", f.runDir, f.cniDataDir, 0)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(f.cniConfDir, 0o755); err != nil {
				return err
			}
			return writeFileAtomic(filepath.Join(f.cniConfDir, "10-fjord.conflist"), conf)
		},
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// writeFileAtomic replaces path in one rename, so a runtime reading it never sees half.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadProxyConfig reads a KubeProxyConfiguration, or returns the defaults for "".
func loadProxyConfig(path string) (*proxyconfig.Config, error) {
	data := []byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n")
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
	}
	cfg, err := proxyconfig.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	return cfg, nil
}
