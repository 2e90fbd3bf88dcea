package healthcheck

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are kube-proxy's metrics (pkg/proxy/metrics) that have the same
// meaning in fjord, under the same names. Left out: the *_pending gauges
// and the last-queued timestamp (fjord's proxy reports syncs, not queued
// changes), and the iptables-only ones.
type metrics struct {
	syncDuration       prometheus.Histogram
	lastSync           prometheus.Gauge
	endpointChanges    prometheus.Counter
	serviceChanges     prometheus.Counter
	networkProgramming prometheus.Histogram
	syncFailures       prometheus.Counter
	noLocalEndpoints   *prometheus.GaugeVec
	healthz, livez     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "kubeproxy"
	var programming []float64
	programming = append(programming, prometheus.LinearBuckets(0.25, 0.25, 2)...)
	programming = append(programming, prometheus.LinearBuckets(1, 1, 59)...)
	programming = append(programming, prometheus.LinearBuckets(60, 5, 12)...)
	programming = append(programming, prometheus.LinearBuckets(120, 30, 7)...)
	m := &metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
			Name: "sync_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns,
			Name: "sync_proxy_rules_last_timestamp_seconds", Help: "The last time proxy rules were successfully synced"}),
		endpointChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "sync_proxy_rules_endpoint_changes_total", Help: "Cumulative proxy rules Endpoint changes (fjord: Services whose endpoints changed between two programmed syncs)"}),
		serviceChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "sync_proxy_rules_service_changes_total", Help: "Cumulative proxy rules Service changes (fjord: Services added, removed or changed between two programmed syncs)"}),
		networkProgramming: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
			Name: "network_programming_duration_seconds", Help: "In Cluster Network Programming Latency in seconds (from EndpointSlices' last-change-trigger-time)",
			Buckets: programming}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "sync_proxy_rules_nftables_sync_failures_total", Help: "Cumulative proxy nftables sync failures"}),
		noLocalEndpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns,
			Name: "sync_proxy_rules_no_local_endpoints_total", Help: "Number of services with a Local traffic policy and no endpoints"},
			[]string{"traffic_policy"}),
		healthz: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "proxy_healthz_total", Help: "Cumulative proxy healthz HTTP status"}, []string{"code"}),
		livez: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "proxy_livez_total", Help: "Cumulative proxy livez HTTP status"}, []string{"code"}),
	}
	if reg != nil {
		reg.MustRegister(m.syncDuration, m.lastSync, m.endpointChanges, m.serviceChanges, m.networkProgramming,
			m.syncFailures, m.noLocalEndpoints, m.healthz, m.livez)
	}
	return m
}
