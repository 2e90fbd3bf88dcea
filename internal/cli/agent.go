package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/cni"
	"github.com/fjord-net/fjord/internal/conntrack"
	"github.com/fjord-net/fjord/internal/endpoints"
	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/proxy/l4"
	"github.com/fjord-net/fjord/internal/proxy/nftproxy"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/svcproxy"
)

type agentFlags struct {
	nodeName, mode, clusterCIDR, iface, nodeIP string
	nodeCIDRSize, mtu, vni, port               int
	runDir, cniConfDir, cniDataDir, stateDir   string
	leaseTTL, resync                           time.Duration
	proxyConfig                                string
	debugAddr                                  string
	endpointsController                        bool
	serviceCIDR                                string
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
	fl.StringVar(&f.serviceCIDR, "service-cidr", "10.96.0.0/16", "service cluster IP range; made local on the node so services without endpoints reject at once")
	fl.BoolVar(&f.endpointsController, "endpoints-controller", true, "take part in electing the one EndpointSlice writer of the cluster")
	fl.StringVarP(&f.proxyConfig, "config", "c", "", "KubeProxyConfiguration file for the service proxy (mode, ipvs.scheduler, syncPeriod, ...)")
	fl.StringVar(&f.debugAddr, "debug-addr", "", "serve Go's profiling endpoints (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (\"\" = off)")
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
	serviceCIDR, err := netip.ParsePrefix(f.serviceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := g.logger()
	if f.debugAddr != "" {
		if err := serveDebug(ctx, f.debugAddr, log); err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
	}
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
	var a *agent.Agent
	a, err = agent.New(cfg, agent.Deps{
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
		// The service proxy needs the node's address (NodePorts), known once the
		// pod network is up.
		Ready: func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := runServiceProxy(ctx, st, proxyCfg, cfg, a.NodeIP(), serviceCIDR, log); err != nil {
					log.Error("service proxy stopped", "err", err)
				}
			}()
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

// bigSync is the transaction size (operations) after which the agent returns
// freed memory to the OS at once: a first sync of some 3,000 services or more.
const bigSync = 20000

// runServiceProxy programs Services into nftables (and the userspace proxy for lc/wlc)
// until ctx ends.
func runServiceProxy(ctx context.Context, st *store.Store, pc *proxyconfig.Config, ac agent.Config, nodeIP netip.Addr, serviceCIDR netip.Prefix, log *slog.Logger) error {
	nft, err := nftproxy.NewInterface(knftables.IPv4Family)
	if err != nil {
		return err
	}
	clusterCIDR := ac.ClusterCIDR
	if len(pc.ClusterCIDR) > 0 {
		clusterCIDR = pc.ClusterCIDR[0]
	}
	noNodePorts := len(pc.NodePortAddresses) > 0 && !slices.ContainsFunc(pc.NodePortAddresses, func(p netip.Prefix) bool { return p.Contains(nodeIP) })
	if noNodePorts {
		log.Warn("nodePortAddresses excludes this node's address; no NodePorts here", "node-ip", nodeIP)
	}
	proxier, err := nftproxy.New(nft, nftproxy.Config{
		NodeIPs: []netip.Addr{nodeIP}, DisableNodePorts: noNodePorts, ServiceCIDRs: []netip.Prefix{serviceCIDR.Masked()},
		ClusterCIDR: clusterCIDR, ExcludeCIDRs: pc.ExcludeCIDRs, MasqueradeAll: pc.MasqueradeAll,
		// One seed cluster-wide, so sh and maglev send a client to the same
		// endpoint whichever node it enters by.
		HashSeed: 0x666a6f72,
		// Periodic resyncs audit the table over netlink and read all of it
		// only when something differs (or hourly): listing it through nft
		// costs seconds and hundreds of MB at 10,000 services.
		Netlink: true,
	})
	if err != nil {
		return err
	}
	ct, err := conntrack.Open("")
	if err != nil {
		return err
	}
	defer ct.Close()
	userspace := l4.New(l4.Options{Logger: log.With("component", "l4-proxy")})
	defer userspace.Close()
	claimed := false
	dp := svcproxy.DataplaneFunc(func(m servicemap.Map, full bool) error {
		stats, err := proxier.Sync(m, full)
		if err == nil && claimed && stats.Full && stats.Operations > 0 {
			log.Warn("table ip fjord had drifted from what this agent wrote; repaired",
				"operations", stats.Operations, "chainsWritten", stats.ChainsWritten,
				"elementsAdded", stats.ElementsAdded, "elementsDeleted", stats.ElementsDeleted)
		}
		if err == nil && !claimed {
			// Only now that DNAT and the drop rules are in place may service IPs become
			// local; earlier, a node-local listener (the ingress on :80) would answer
			// traffic meant for a service.
			if err = claimServiceRange(serviceCIDR); err == nil {
				claimed = true
			}
		}
		if err == nil && stats.Operations > bigSync {
			// The transaction and its text were garbage as soon as nft returned;
			// hand the pages back now instead of holding them until the scavenger
			// gets round to it (minutes, at hundreds of MB for 30,000 services).
			debug.FreeOSMemory()
		}
		if err == nil && (full || stats.ServicePorts > 0) {
			log.Debug("services synced", "full", stats.Full, "audited", stats.Audited, "servicePorts", stats.ServicePorts)
		}
		return err
	})
	p, err := svcproxy.New(svcproxy.Config{
		NodeName: ac.NodeName, DefaultScheduler: pc.Scheduler, MinSyncPeriod: pc.MinSyncPeriod, SyncPeriod: pc.SyncPeriod,
	}, svcproxy.Deps{Store: st, Dataplane: dp, L4: userspace, Conntrack: ct, Log: log})
	if err != nil {
		return err
	}
	log.Info("service proxy", "mode", pc.Mode, "scheduler", pc.Scheduler, "syncPeriod", pc.SyncPeriod, "minSyncPeriod", pc.MinSyncPeriod)
	p.Run(ctx)
	return nil
}

// claimServiceRange makes the service range local on this node (see
// kernel.EnsureLocalRoute).
func claimServiceRange(p netip.Prefix) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	return kernel.New(h).EnsureLocalRoute(p.Masked())
}
