package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/conntrack"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/nodereg"
	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/proxy/healthcheck"
	"github.com/fjord-net/fjord/internal/proxy/l4"
	"github.com/fjord-net/fjord/internal/proxy/nftproxy"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/svcproxy"
)

// loadProxyConfig reads a KubeProxyConfiguration, or returns the defaults for "".
// The file is what kubeadm's kube-system/kube-proxy ConfigMap holds under the key
// config.conf, mounted as a file.
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

// ConditionServiceProxyReady is the Node condition the agent keeps: True while the
// service proxy programs the kernel, False (with the reason) while it cannot.
const ConditionServiceProxyReady corev1.NodeConditionType = "FjordServiceProxyReady"

// serviceProxy runs the agent's service proxy: Services into nftables (and the
// userspace proxy for lc/wlc).
type serviceProxy struct {
	src         *source.Source
	pc          *proxyconfig.Config
	ac          agent.Config
	nodeIP      netip.Addr
	serviceCIDR netip.Prefix
	reg         nodereg.Registrar
	log         *slog.Logger
	health      *healthcheck.Health  // set by run
	metrics     *prometheus.Registry // served on metricsBindAddress; nil: a registry of its own
	procSys     string               // where /proc/sys is writable (a host-path mount in a pod)
}

// run starts the proxy, retrying with backoff while it cannot start (nft missing,
// permission denied), and keeps the node's FjordServiceProxyReady condition true to
// what happens: a node whose services are not programmed shows it.
func (s serviceProxy) run(ctx context.Context) error {
	// /healthz, /livez, /metrics and health-check node ports (agent_health.go): up
	// before the proxy, so a proxy that cannot start shows unhealthy.
	var err error
	if s.health, err = serveProxyHealth(ctx, s.pc, s.nodeIP, nodePortIPs(s.pc, s.nodeIP), s.metrics, s.log); err != nil {
		s.log.Error("service proxy health endpoints", "err", err)
	}
	delay := time.Second
	for {
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.setReady(ctx, false, "StartFailed", err.Error())
		s.log.Error("service proxy cannot run; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

func (s serviceProxy) setReady(ctx context.Context, ok bool, reason, msg string) {
	setNodeCondition(ctx, s.reg, s.ac.NodeName, s.condition(ok, reason, msg), s.log)
}

func (s serviceProxy) condition(ok bool, reason, msg string) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: ConditionServiceProxyReady, Status: corev1.ConditionFalse, Reason: reason, Message: msg,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
	if ok {
		c.Status = corev1.ConditionTrue
	}
	return c
}

// condReporter writes Node conditions from its own goroutine, latest first: a sender
// never waits for the store, and a condition superseded before it was written is
// dropped.
type condReporter struct{ ch chan corev1.NodeCondition }

func newCondReporter() *condReporter { return &condReporter{ch: make(chan corev1.NodeCondition, 1)} }

// set queues c, replacing a queued one (single sender).
func (r *condReporter) set(c corev1.NodeCondition) {
	select {
	case <-r.ch:
	default:
	}
	r.ch <- c
}

func (r *condReporter) run(ctx context.Context, reg nodereg.Registrar, node string, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-r.ch:
			setNodeCondition(ctx, reg, node, c, log)
		}
	}
}

// setNodeCondition records c on the Node, logging (not failing) when it cannot: the
// store may be down, and the data plane must not depend on it.
func setNodeCondition(ctx context.Context, reg nodereg.Registrar, node string, c corev1.NodeCondition, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := reg.SetCondition(cctx, node, c); err != nil && ctx.Err() == nil {
		log.Warn("could not record node condition", "type", c.Type, "status", c.Status, "err", err)
	}
}

// networkAvailable is the condition a CNI sets once the pod network works (Calico and
// flannel do the same), clearing the NetworkUnavailable taint's condition.
func networkAvailable() corev1.NodeCondition {
	return corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "FjordIsUp",
		Message: "fjord programmed the pod network", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
}

func (s serviceProxy) runOnce(ctx context.Context) error {
	// kube-proxy's conntrack settings (tcpCloseWaitTimeout, ...): a failure is worth
	// a warning, not a data plane without services.
	if changed, err := conntrack.ApplySysctls(s.procSys, s.pc.ConntrackSysctls(runtime.NumCPU())); err != nil {
		s.log.Warn("conntrack settings of the KubeProxyConfiguration not applied (in a pod, mount the host's /proc/sys/net/netfilter and pass --proc-sys)", "err", err)
	} else if len(changed) > 0 {
		s.log.Info("conntrack settings applied", "set", changed)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("the nft command is not installed (Debian: apt install nftables): %w", err)
	}
	nft, err := nftproxy.NewInterface(knftables.IPv4Family)
	if err != nil {
		return err
	}
	pc, ac := s.pc, s.ac
	clusterCIDR := ac.ClusterCIDR
	if len(pc.ClusterCIDR) > 0 {
		clusterCIDR = pc.ClusterCIDR[0]
	}
	noNodePorts := len(pc.NodePortAddresses) > 0 && !slices.ContainsFunc(pc.NodePortAddresses, func(p netip.Prefix) bool { return p.Contains(s.nodeIP) })
	if noNodePorts {
		s.log.Warn("nodePortAddresses excludes this node's address; no NodePorts here", "node-ip", s.nodeIP)
	}
	proxier, err := nftproxy.New(nft, nftproxy.Config{
		NodeIPs: []netip.Addr{s.nodeIP}, DisableNodePorts: noNodePorts, ServiceCIDRs: []netip.Prefix{s.serviceCIDR.Masked()},
		ClusterCIDR: clusterCIDR, ExcludeCIDRs: pc.ExcludeCIDRs, MasqueradeAll: pc.MasqueradeAll,
		UserspacePorts: svcproxy.DefaultUserspacePorts, // only fjord's redirects reach the lc/wlc listeners
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
	userspace := l4.New(l4.Options{Logger: s.log.With("component", "l4-proxy")})
	defer userspace.Close()
	claimed, healthy := false, false
	cond := newCondReporter()
	go cond.run(ctx, s.reg, ac.NodeName, s.log)
	dp := svcproxy.DataplaneFunc(func(m servicemap.Map, full bool) error {
		stats, err := proxier.Sync(m, full)
		if err == nil && claimed && stats.Full && stats.Operations > 0 {
			s.log.Warn("table ip fjord had drifted from what this agent wrote; repaired",
				"operations", stats.Operations, "chainsWritten", stats.ChainsWritten,
				"elementsAdded", stats.ElementsAdded, "elementsDeleted", stats.ElementsDeleted)
		}
		if err == nil && !claimed {
			// Only now that DNAT and the drop rules are in place may service IPs become
			// local; earlier, a node-local listener (the ingress on :80) would answer
			// traffic meant for a service.
			if err = claimServiceRange(s.serviceCIDR); err == nil {
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
			s.log.Debug("services synced", "full", stats.Full, "audited", stats.Audited, "servicePorts", stats.ServicePorts)
		}
		// The condition follows transitions only: one write when programming starts
		// failing, one when it works again, written off the sync path (the store may
		// be the thing that is down).
		if ok := err == nil; ok != healthy {
			healthy = ok
			reason, msg := "Programmed", "services are programmed into table ip fjord"
			if !ok {
				reason, msg = "SyncFailed", err.Error()
			}
			cond.set(s.condition(ok, reason, msg))
		}
		return err
	})
	p, err := svcproxy.New(svcproxy.Config{
		NodeName: ac.NodeName, DefaultScheduler: pc.Scheduler, MinSyncPeriod: pc.MinSyncPeriod, SyncPeriod: pc.SyncPeriod,
	}, svcproxy.Deps{Services: s.src.Services(), EndpointSlices: s.src.EndpointSlices(), Nodes: s.src.Nodes(), Dataplane: dp, L4: userspace, Conntrack: ct, Log: s.log, Health: s.health})
	if err != nil {
		return err
	}
	s.log.Info("service proxy", "mode", pc.Mode, "scheduler", pc.Scheduler, "syncPeriod", pc.SyncPeriod, "minSyncPeriod", pc.MinSyncPeriod)
	p.Run(ctx)
	if ctx.Err() == nil {
		return errors.New("service proxy loop ended")
	}
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
