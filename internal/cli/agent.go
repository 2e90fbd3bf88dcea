package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/endpoints"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
)

type agentFlags struct {
	nodeName, mode, clusterCIDR, iface, nodeIP string
	nodeCIDRSize, mtu, vni, port               int
	runDir, cniConfDir, cniDataDir, stateDir   string
	cniBinDir, cniPluginsFrom, cniVersion      string
	procSys                                    string
	leaseTTL, resync, podCIDRWait              time.Duration
	proxyConfig                                string
	debugAddr                                  string
	endpointsController                        bool
	serviceCIDR                                string
	bgp                                        agentBGPFlags
}

func newAgentCommand(g *globals) *cobra.Command {
	host := os.Getenv("NODE_NAME") // set from spec.nodeName by the DaemonSet
	if host == "" {
		host, _ = os.Hostname()
	}
	f := agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: pod network, service proxy (and, with etcd, the endpoints controller)",
		Long: `Runs fjord's node agent. It registers this node, gets a pod CIDR, writes the
node's pod network for the CNI plugin (RUN-DIR/node.json and a CNI config), keeps the
kernel's routes, neighbour and FDB entries equal to what all Nodes call for, and runs
the service proxy. Restarting it never flushes anything.

Where objects come from:
  --kubeconfig FILE, or inside a pod with a service account: the Kubernetes API. The
  kubelet owns the Node; the agent adds its annotations, takes spec.podCIDRs (or
  allocates one when the controller-manager does not) and reads the cluster's
  EndpointSlices.
  otherwise: fjord's etcd store (--etcd-endpoints, $FJORD_ETCD_ENDPOINTS, or an
  embedded member in STATE-DIR, so a single machine needs nothing else). The agent
  registers the Node, claims a pod CIDR by compare-and-swap, keeps a liveness lease
  and takes part in electing the one EndpointSlice writer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodeName, "node-name", host, "this node's name")
	fl.StringVar(&f.mode, "mode", "vxlan", "pod network mode: vxlan, routed or bgp (docs/bgp.md)")
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
	fl.StringVar(&f.cniBinDir, "cni-bin-dir", "", "install the CNI plugin (as \"fjord\") and missing reference plugins here, e.g. /opt/cni/bin (\"\" = don't)")
	fl.StringVar(&f.procSys, "proc-sys", "/proc/sys", "where /proc/sys is writable, for the conntrack settings of the KubeProxyConfiguration (in a pod: a host-path mount of /proc/sys/net/netfilter under DIR/net/netfilter)")
	fl.StringVar(&f.cniVersion, "cni-version", "1.0.0", "CNI spec version of the network list: 1.0.0 for containerd 1.6/1.7 and CRI-O, 1.1.0 (GC, STATUS) for runtimes with libcni 1.2+")
	fl.StringVar(&f.cniPluginsFrom, "cni-plugins-from", "/usr/lib/fjord/cni", "where the reference plugins to install (portmap, loopback) are")
	fl.DurationVar(&f.podCIDRWait, "pod-cidr-wait", 10*time.Second, "Kubernetes mode: how long to wait for the controller-manager to set the Node's podCIDRs before allocating one")
	fl.StringVar(&f.stateDir, "state-dir", DefaultStateDir, "embedded store's directory (used without --etcd-endpoints)")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 15*time.Second, "etcd mode: node liveness lease (renewed every quarter of it); a node silent this long is NotReady, and an endpoints controller leader silent this long is replaced")
	fl.DurationVar(&f.resync, "resync", 30*time.Second, "full reconcile period (repairs drift)")
	fl.StringVar(&f.serviceCIDR, "service-cidr", "10.96.0.0/16", "service cluster IP range; made local on the node so services without endpoints reject at once")
	fl.BoolVar(&f.endpointsController, "endpoints-controller", true, "take part in electing the one EndpointSlice writer of the cluster")
	fl.StringVarP(&f.proxyConfig, "config", "c", "", "KubeProxyConfiguration file for the service proxy (mode, ipvs.scheduler, syncPeriod, ...)")
	f.bgp.register(fl)
	fl.StringVar(&f.debugAddr, "debug-addr", "", "serve Go's profiling endpoints (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (\"\" = off; a bare :PORT is loopback)")
	return cmd
}

func (f agentFlags) config() (agent.Config, error) {
	if f.cniVersion != "1.0.0" && f.cniVersion != "1.1.0" {
		return agent.Config{}, fmt.Errorf("--cni-version: %q is not 1.0.0 or 1.1.0", f.cniVersion)
	}
	cfg := agent.Config{NodeName: f.nodeName, Mode: podnet.Mode(f.mode), NodeCIDRBits: f.nodeCIDRSize, Iface: f.iface,
		MTU: f.mtu, VNI: f.vni, Port: f.port, RunDir: f.runDir, Resync: f.resync}
	var err error
	if cfg.ClusterCIDR, err = netip.ParsePrefix(f.clusterCIDR); err != nil {
		return cfg, fmt.Errorf("--cluster-cidr: %w", err)
	}
	if f.nodeIP != "" {
		if cfg.NodeIP, err = netip.ParseAddr(f.nodeIP); err != nil {
			return cfg, fmt.Errorf("--node-ip: %w", err)
		}
	}
	if cfg.NodeLabels, err = f.bgp.labels(); err != nil {
		return cfg, err
	}
	if cfg.Mode == podnet.ModeBGP {
		if cfg.BGP, err = f.bgp.config(f.serviceCIDR); err != nil {
			return cfg, err
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
	serviceCIDR, err := netip.ParsePrefix(f.serviceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := g.logger()
	if f.debugAddr, err = helperListenAddr("--debug-addr", f.debugAddr); err != nil {
		return err
	}
	if f.debugAddr != "" {
		if err := serveDebug(ctx, f.debugAddr, log); err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
	}
	if notice := proxyCfg.Notice(kernel.HasIPVS()); notice != "" {
		log.Warn(notice)
	}

	be, err := openAgentBackend(ctx, g, f, proxyCfg, log)
	if err != nil {
		return err
	}
	defer be.close()
	log.Info("objects from", "backend", be.src.Backend(), "node", cfg.NodeName)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if be.fatal != nil {
		go func() {
			select {
			case err := <-be.fatal:
				log.Error("stopping: the embedded store failed", "err", err)
				cancel(err)
			case <-ctx.Done():
			}
		}()
	}
	if be.store != nil && f.endpointsController {
		ec, err := endpoints.New(be.store, be.src, endpoints.Config{Identity: cfg.NodeName, SessionTTL: f.leaseTTL}, log)
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
	var bgpd agent.BGPDeps
	if cfg.Mode == podnet.ModeBGP {
		if bgpd, err = bgpDeps(ctx, be.src, cfg.NodeName, f.runDir, log); err != nil {
			return err
		}
	}
	var a *agent.Agent
	a, err = agent.New(cfg, agent.Deps{
		BGP:       bgpd,
		Registrar: be.registrar,
		Nodes:     be.src.Nodes(),
		Kernel:    kernel.New(h),
		Log:       log,
		Publish: func(n nodestate.NodeNetwork) error {
			if err := nodestate.Write(f.runDir, n); err != nil {
				return err
			}
			return installCNI(f, log)
		},
		// The service proxy needs the node's address (NodePorts), known once the
		// pod network is up.
		Ready: func() {
			setNodeCondition(ctx, be.registrar, cfg.NodeName, networkAvailable(), log)
			metrics := newAgentRegistry() // one /metrics on metricsBindAddress (agent_health.go)
			startLatencyProbes(ctx, &wg, be.src.Nodes(), cfg.NodeName, a.NodeIP(), metrics, log)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sp := serviceProxy{src: be.src, pc: proxyCfg, ac: cfg, nodeIP: a.NodeIP(), serviceCIDR: serviceCIDR,
					reg: be.registrar, log: log, procSys: f.procSys, metrics: metrics}
				if err := sp.run(ctx); err != nil {
					log.Error("service proxy stopped", "err", err)
				}
			}()
		},
	})
	if err != nil {
		return err
	}
	be.src.Start(ctx)
	err = a.Run(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// writeFileAtomic replaces path in one rename, so a runtime reading it never sees half.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
