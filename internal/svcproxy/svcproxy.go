// Package svcproxy is the service proxy an agent runs: it reads Services and
// EndpointSlices from the process's shared informers (fjord's store or the Kubernetes
// API), turns them into a servicemap.Map, and hands that to
// the dataplane (nftables verdict maps, one atomic transaction per sync), to the
// userspace L4 proxy (services whose scheduler needs a per-connection decision: lc,
// wlc), and to conntrack cleanup (UDP flows pinned to endpoints that went away).
//
// Syncs are scheduled by a bounded-frequency runner: after changes, at most once per
// minSyncPeriod, and a full resync every syncPeriod that repairs drift. An outage of
// the store or API server freezes the informers' caches, so the data plane keeps the
// last good state.
package svcproxy

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/conntrack"
	"github.com/fjord-net/fjord/internal/proxy/l4"
	"github.com/fjord-net/fjord/internal/proxy/sched"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/syncrunner"
)

// Dataplane programs the kernel from a service map; nftproxy implements it.
type Dataplane interface {
	Sync(m servicemap.Map, full bool) error
}

// L4 is the userspace proxy for lc/wlc services; *l4.Proxy implements it.
type L4 interface {
	Set([]l4.Service) error
}

// DefaultUserspacePorts is the port range of the lc/wlc listeners: above the
// kernel's default ephemeral range (32768-60999). The nftables proxier must be
// given the same range (nftproxy Config.UserspacePorts), so that only traffic
// its redirects sent there reaches the listeners.
var DefaultUserspacePorts = [2]uint16{61000, 61999}

// Config is the proxy's configuration.
type Config struct {
	NodeName         string
	DefaultScheduler string        // ipvs.scheduler from the KubeProxyConfiguration
	MinSyncPeriod    time.Duration // 0 = sync on every change
	SyncPeriod       time.Duration // full resync
	// UserspacePorts is the range lc/wlc listeners take ports from, outside the
	// kernel's ephemeral range so they never collide with outgoing connections.
	UserspacePorts [2]uint16
}

// Deps are the proxy's collaborators.
type Deps struct {
	// Services and EndpointSlices are the process's shared informers.
	Services, EndpointSlices cache.SharedIndexInformer
	// Nodes, if set, is the shared Node informer: this node's
	// topology.kubernetes.io/zone label is read from it for endpoints' zone hints,
	// and a change of it resyncs.
	Nodes     cache.SharedIndexInformer
	Dataplane Dataplane
	L4        L4                // nil: lc/wlc services fall back to the kernel path (random)
	Conntrack conntrack.Cleaner // nil: no cleanup
	Log       *slog.Logger
	// Health, if set, is told about every sync when it ends: the map now
	// programmed (the last good one after an error), when the sync started,
	// and its error. *healthcheck.Health implements it.
	Health interface {
		Synced(m servicemap.Map, full bool, started time.Time, err error)
	}
}

// Proxy runs the sync loop.
type Proxy struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	runner *syncrunner.Runner

	mu       sync.Mutex
	prev     servicemap.Map
	ports    map[string]uint16 // service port key -> userspace listener port
	problems string
}

// New builds a proxy.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if deps.Services == nil || deps.EndpointSlices == nil || deps.Dataplane == nil {
		return nil, errors.New("svcproxy: Service and EndpointSlice informers and a dataplane are required")
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	if cfg.UserspacePorts == [2]uint16{} {
		cfg.UserspacePorts = DefaultUserspacePorts
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	p := &Proxy{cfg: cfg, deps: deps, log: deps.Log.With("component", "service-proxy"), ports: map[string]uint16{},
		runner: syncrunner.New(cfg.MinSyncPeriod, cfg.SyncPeriod)}
	for _, inf := range []cache.SharedIndexInformer{deps.Services, deps.EndpointSlices} {
		if err := source.OnChange(inf, p.runner.Kick); err != nil {
			return nil, err
		}
	}
	if deps.Nodes != nil {
		zone := ""
		err := source.OnObject(deps.Nodes, func(n *corev1.Node, _ bool) {
			if n.Name == cfg.NodeName && n.Labels[corev1.LabelTopologyZone] != zone {
				zone = n.Labels[corev1.LabelTopologyZone]
				p.runner.Kick()
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// nodeZone is this node's zone label, "" when unknown.
func (p *Proxy) nodeZone() string {
	if p.deps.Nodes == nil {
		return ""
	}
	n, ok := source.Get[*corev1.Node](p.deps.Nodes, "", p.cfg.NodeName)
	if !ok {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

// Run syncs until ctx ends. The informers are the caller's to start.
func (p *Proxy) Run(ctx context.Context) {
	go func() {
		// Handlers see the initial list before HasSynced turns true; kick once more
		// after, so the first sync does not wait for the next change.
		if cache.WaitForCacheSync(ctx.Done(), p.deps.Services.HasSynced, p.deps.EndpointSlices.HasSynced) {
			p.runner.Kick()
		}
	}()
	p.runner.Run(ctx, p.sync)
}

// sync runs one sync and reports it to Deps.Health.
func (p *Proxy) sync(full bool) error {
	started := time.Now()
	err := p.program(full)
	if p.deps.Health != nil {
		p.mu.Lock()
		m := p.prev
		p.mu.Unlock()
		p.deps.Health.Synced(m, full, started, err)
	}
	return err
}

// program builds the map from the informers' caches and applies it everywhere.
func (p *Proxy) program(full bool) error {
	if !p.deps.Services.HasSynced() || !p.deps.EndpointSlices.HasSynced() {
		// Never program from a partial view: a missing Service would be torn down.
		return syncrunner.ErrNotReady
	}
	svcs := source.List[*corev1.Service](p.deps.Services)
	eps := source.List[*discoveryv1.EndpointSlice](p.deps.EndpointSlices)
	m := servicemap.Build(svcs, eps, servicemap.Options{NodeName: p.cfg.NodeName, DefaultScheduler: p.cfg.DefaultScheduler, NodeZone: p.nodeZone()})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reportProblems(m.Problems)
	userspace := p.assignUserspacePorts(&m)
	if err := p.deps.Dataplane.Sync(m, full); err != nil {
		return err
	}
	var errs []error
	if p.deps.L4 != nil {
		if err := p.deps.L4.Set(userspace); err != nil {
			errs = append(errs, err)
		}
	}
	p.cleanConntrack(p.prev, m)
	p.prev = m
	return errors.Join(errs...)
}

// assignUserspacePorts gives every lc/wlc service port a stable listener port and
// returns the L4 proxy's services. Without an L4 proxy they stay on the kernel path.
func (p *Proxy) assignUserspacePorts(m *servicemap.Map) []l4.Service {
	var out []l4.Service
	used := map[uint16]bool{}
	for key, port := range p.ports {
		if sp, ok := m.Ports[key]; ok && needsUserspace(sp.Scheduler) {
			used[port] = true
		} else {
			delete(p.ports, key)
		}
	}
	for _, key := range m.Keys() {
		sp := m.Ports[key]
		if p.deps.L4 == nil || !needsUserspace(sp.Scheduler) || sp.Protocol == servicemap.SCTP {
			continue
		}
		port, ok := p.ports[key]
		if !ok {
			for c := p.cfg.UserspacePorts[0]; c <= p.cfg.UserspacePorts[1] && c != 0; c++ {
				if !used[c] {
					port, ok = c, true
					break
				}
			}
			if !ok {
				p.log.Error("no userspace port left for an lc/wlc service; using the kernel path", "service", key)
				continue
			}
			p.ports[key], used[port] = port, true
		}
		sp.UserspacePort = port
		m.Ports[key] = sp
		var eps []sched.Endpoint
		for _, ep := range sp.ClusterEndpoints() {
			eps = append(eps, sched.Endpoint{Addr: ep.AddrPort(), Weight: ep.Weight})
		}
		out = append(out, l4.Service{Key: key, Protocol: string(sp.Protocol), Scheduler: sp.Scheduler,
			ListenAddr: netip.AddrPortFrom(netip.IPv4Unspecified(), port), Endpoints: eps})
	}
	return out
}

func needsUserspace(scheduler string) bool { return scheduler == "lc" || scheduler == "wlc" }

// cleanConntrack deletes conntrack entries that still point at endpoints the new map no
// longer uses, so clients move on at once instead of timing out: UDP flows, and TCP
// connections whose SYN was never answered (whose source port a new connection could
// reuse).
func (p *Proxy) cleanConntrack(prev, next servicemap.Map) {
	if p.deps.Conntrack == nil {
		return
	}
	var sels []conntrack.Selector
	for _, st := range servicemap.StaleEndpoints(prev, next) {
		var add []conntrack.Selector
		for _, ip := range st.ServiceIPs {
			add = append(add, conntrack.ServiceEndpoint(ip, st.ServicePort, st.EndpointIP))
		}
		if st.NodePort != 0 {
			add = append(add, conntrack.NodePortEndpoint(st.NodePort, st.EndpointIP))
		}
		if st.Protocol == servicemap.TCP {
			for i := range add {
				add[i] = add[i].TCP()
			}
		}
		sels = append(sels, add...)
	}
	// A UDP service that had no endpoints may have conntrack entries, made while its
	// packets were rejected, that carry no NAT: clear them once it has endpoints.
	for _, key := range next.Keys() {
		sp := next.Ports[key]
		if sp.Protocol != servicemap.UDP || len(sp.ClusterEndpoints()) == 0 {
			continue
		}
		if old, ok := prev.Ports[key]; ok && len(old.ClusterEndpoints()) > 0 {
			continue
		}
		for _, ip := range sp.ClusterIPs {
			sels = append(sels, conntrack.ServiceIP(ip, sp.Port))
		}
	}
	if len(sels) == 0 {
		return
	}
	n, err := p.deps.Conntrack.Delete(sels...)
	if err != nil {
		p.log.Warn("conntrack cleanup failed", "err", err)
		return
	}
	p.log.Info("deleted stale conntrack entries", "entries", n)
}

func (p *Proxy) reportProblems(ps []servicemap.Problem) {
	var s string
	for _, pr := range ps {
		s += pr.String() + "\n"
	}
	if s == p.problems {
		return
	}
	p.problems = s
	for _, pr := range ps {
		p.log.Warn("service skipped or defaulted", "problem", pr.String())
	}
}

// DataplaneFunc adapts a function to Dataplane.
type DataplaneFunc func(m servicemap.Map, full bool) error

// Sync calls f.
func (f DataplaneFunc) Sync(m servicemap.Map, full bool) error { return f(m, full) }
