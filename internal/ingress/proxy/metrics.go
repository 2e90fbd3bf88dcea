package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus metrics. They are registered with
// the Registerer given in Options, never with the global registry.
type metrics struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstream         *prometheus.HistogramVec
	upstreamConns    *prometheus.CounterVec
	retries          prometheus.Counter
	transportRetries prometheus.Counter
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
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.upstream, m.upstreamConns, m.retries, m.transportRetries)
	}
	return m
}

func (m *metrics) conn(reused bool) {
	if reused {
		m.upstreamConns.WithLabelValues("true").Inc()
	} else {
		m.upstreamConns.WithLabelValues("false").Inc()
	}
}

func (m *metrics) observe(ingress, namespace, service string, status int, d time.Duration, attempts []attempt) {
	m.requests.WithLabelValues(ingress, namespace, service, statusLabel(status)).Inc()
	m.duration.WithLabelValues(ingress, namespace, service).Observe(d.Seconds())
	if len(attempts) > 0 {
		h := m.upstream.WithLabelValues(ingress, namespace, service)
		for _, a := range attempts {
			h.Observe(a.dur.Seconds())
		}
	}
}
