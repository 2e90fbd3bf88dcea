package healthcheck

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/syncrunner"
)

// Config configures a Health.
type Config struct {
	// SyncPeriod is the proxy's syncPeriod; the health timeout is twice
	// it, as in kube-proxy. 0 means 30s.
	SyncPeriod time.Duration
	// NodeIPs are the addresses healthCheckNodePort servers listen on
	// (the node addresses that take NodePorts); none means no such servers.
	NodeIPs []netip.Addr
	// Registerer receives the kube-proxy metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Listen opens listeners; nil means net.Listen.
	Listen func(network, address string) (net.Listener, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Health follows the service proxy's syncs: it decides the proxy's health,
// keeps the healthCheckNodePort servers equal to what the last programmed
// map calls for, and updates the metrics. Synced is its only input.
type Health struct {
	cfg     Config
	tracker *Tracker
	servers *ServiceServers
	m       *metrics

	mu   sync.Mutex
	prev servicemap.Map // last programmed map
}

// New returns a Health created now.
func New(cfg Config) *Health {
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Health{cfg: cfg, tracker: NewTracker(2*cfg.SyncPeriod, cfg.Now()), m: newMetrics(cfg.Registerer)}
	h.servers = NewServiceServers(cfg.Listen, func() bool { return h.tracker.Status(cfg.Now()).Healthy }, cfg.Log)
	return h
}

// Synced reports one sync of the service proxy: m is the map now
// programmed (the last good one when err is not nil), started when the sync
// began.
func (h *Health) Synced(m servicemap.Map, full bool, started time.Time, err error) {
	now := h.cfg.Now()
	h.tracker.Synced(started, now, err)
	if err != nil {
		if !errors.Is(err, syncrunner.ErrNotReady) {
			h.m.syncFailures.Inc()
		}
		return
	}
	h.m.syncDuration.Observe(now.Sub(started).Seconds())
	h.m.lastSync.Set(float64(now.UnixNano()) / 1e9)
	h.mu.Lock()
	c := diffMaps(h.prev, m)
	h.prev = m
	h.mu.Unlock()
	h.m.serviceChanges.Add(float64(c.services))
	h.m.endpointChanges.Add(float64(c.endpoints))
	for _, t := range c.triggers {
		if d := now.Sub(t); d >= 0 {
			h.m.networkProgramming.Observe(d.Seconds())
		}
	}
	internal, external := noLocalEndpoints(m)
	h.m.noLocalEndpoints.WithLabelValues("internal").Set(float64(internal))
	h.m.noLocalEndpoints.WithLabelValues("external").Set(float64(external))
	if err := h.servers.Set(h.cfg.NodeIPs, Services(m)); err != nil {
		h.cfg.Log.Error("health-check node ports", "err", err)
	}
}

// Healthy reports the proxy's health now (what /livez answers).
func (h *Health) Healthy() bool { return h.tracker.Status(h.cfg.Now()).Healthy }

// Servers returns the healthCheckNodePort servers.
func (h *Health) Servers() *ServiceServers { return h.servers }

// Close stops the healthCheckNodePort servers.
func (h *Health) Close() { h.servers.Close() }

// Handler serves /healthz and /livez as kube-proxy does: 200 or 503 with
// {"lastUpdated": ..., "currentTime": ...} (and "nodeEligible" on
// /healthz). As kube-proxy, a healthy answer reports the current time as
// lastUpdated.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { h.answer(w, true) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { h.answer(w, false) })
	return mux
}

func (h *Health) answer(w http.ResponseWriter, healthz bool) {
	now := h.cfg.Now()
	st := h.tracker.Status(now)
	healthy := st.Healthy
	counter := h.m.livez
	if healthz {
		healthy = healthy && st.NodeEligible
		counter = h.m.healthz
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	last := st.LastUpdated
	if healthy {
		counter.WithLabelValues("200").Inc()
		w.WriteHeader(http.StatusOK)
		last = now
	} else {
		counter.WithLabelValues("503").Inc()
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if healthz {
		fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q, "nodeEligible": %v}`, last, now, st.NodeEligible)
		return
	}
	fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q}`, last, now)
}
