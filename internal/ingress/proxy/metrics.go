package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus metrics. They are registered with
// the Registerer given in Options, never with the global registry.
//
// The request path does not look up label values per request: the
// handles of each (ingress, namespace, service) are resolved once and
// kept in routes, its counters per status in a small copy-on-write list.
type metrics struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstream         *prometheus.HistogramVec
	upstreamConns    *prometheus.CounterVec
	retries          prometheus.Counter
	transportRetries prometheus.Counter
	connReused       prometheus.Counter
	connNew          prometheus.Counter

	mu     sync.RWMutex
	routes map[routeLabels]*routeMetrics
	// live are the routes of the current Snapshot (nil before the first):
	// series are created only for them, and keepOnly deletes the others.
	live map[routeLabels]bool
}

// routeLabels are the labels a request is counted under; empty when no
// route matched.
type routeLabels struct{ ingress, namespace, service string }

// routeMetrics are the resolved metric handles of one routeLabels.
type routeMetrics struct {
	labels   routeLabels
	duration prometheus.Observer
	upstream prometheus.Observer
	statuses atomic.Pointer[[]statusCounter]
	mu       sync.Mutex // serialises additions to statuses
}

type statusCounter struct {
	status int
	c      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fjord_ingress_requests_total",
			Help: "Requests answered by the ingress proxy, by ingress, namespace, service and status (ingress, namespace and service are empty when no route matched).",
		}, []string{"ingress", "namespace", "service", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fjord_ingress_request_duration_seconds",
			Help:    "Time from reading the request to the end of the response ($request_time).",
			Buckets: buckets,
		}, []string{"ingress", "namespace", "service"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fjord_ingress_upstream_response_seconds",
			Help:    "Time of each upstream attempt, to the end of its response body ($upstream_response_time).",
			Buckets: buckets,
		}, []string{"ingress", "namespace", "service"}),
		upstreamConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fjord_ingress_upstream_connections_total",
			Help: "Upstream connections taken for a request (or a resend): reused=\"true\" from the keep-alive pool, \"false\" dialled for it.",
		}, []string{"reused"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fjord_ingress_upstream_retries_total",
			Help: "Upstream attempts repeated under proxy-next-upstream.",
		}),
		transportRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fjord_ingress_upstream_stale_connection_retries_total",
			Help: "Requests resent on a fresh connection because a reused keep-alive connection had been closed by the upstream (the keep-alive race).",
		}),
		routes: map[routeLabels]*routeMetrics{},
	}
	m.connReused = m.upstreamConns.WithLabelValues("true")
	m.connNew = m.upstreamConns.WithLabelValues("false")
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.upstream, m.upstreamConns, m.retries, m.transportRetries)
	}
	return m
}

func (m *metrics) conn(reused bool) {
	if reused {
		m.connReused.Inc()
	} else {
		m.connNew.Inc()
	}
}

// route returns the resolved handles for l, or nil when l is no longer a
// route (a request that matched a route the last Swap removed): counting it
// would bring back a series keepOnly deleted.
func (m *metrics) route(l routeLabels) *routeMetrics {
	m.mu.RLock()
	rm := m.routes[l]
	m.mu.RUnlock()
	if rm != nil {
		return rm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live != nil && l != (routeLabels{}) && !m.live[l] {
		return nil
	}
	if rm = m.routes[l]; rm == nil {
		rm = &routeMetrics{
			labels:   l,
			duration: m.duration.WithLabelValues(l.ingress, l.namespace, l.service),
			upstream: m.upstream.WithLabelValues(l.ingress, l.namespace, l.service),
		}
		rm.statuses.Store(&[]statusCounter{})
		m.routes[l] = rm
	}
	return rm
}

// status returns the request counter of rm for status.
func (rm *routeMetrics) status(m *metrics, status int) prometheus.Counter {
	for _, sc := range *rm.statuses.Load() {
		if sc.status == status {
			return sc.c
		}
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	cur := *rm.statuses.Load()
	for _, sc := range cur {
		if sc.status == status {
			return sc.c
		}
	}
	c := m.requests.WithLabelValues(rm.labels.ingress, rm.labels.namespace, rm.labels.service, strconv.Itoa(status))
	next := append(cur[:len(cur):len(cur)], statusCounter{status, c})
	rm.statuses.Store(&next)
	return c
}

// keepOnly makes live the current routes and deletes the series of every
// other one, so that a deleted Ingress, or a Service no Ingress routes to
// any more, leaves no series behind. Requests that did not match a route
// (empty labels) are always counted.
func (m *metrics) keepOnly(live map[routeLabels]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live = live
	for l := range m.routes {
		if l == (routeLabels{}) || live[l] {
			continue
		}
		delete(m.routes, l)
		m.requests.DeletePartialMatch(prometheus.Labels{"ingress": l.ingress, "namespace": l.namespace, "service": l.service})
		m.duration.DeleteLabelValues(l.ingress, l.namespace, l.service)
		m.upstream.DeleteLabelValues(l.ingress, l.namespace, l.service)
	}
}

func (m *metrics) observe(l routeLabels, status int, d time.Duration, attempts []attempt) {
	rm := m.route(l)
	if rm == nil {
		return
	}
	rm.status(m, status).Inc()
	rm.duration.Observe(d.Seconds())
	for _, a := range attempts {
		rm.upstream.Observe(a.dur.Seconds())
	}
}
