package proxy

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestMetricsOfDeletedRoutesRemoved: the series of an Ingress that is
// deleted, and of a Service no Ingress routes to any more, go away with
// the Snapshot that drops them; the others keep counting.
func TestMetricsOfDeletedRoutesRemoved(t *testing.T) {
	a := startBackend(t, "a", 0, nil)
	b := startBackend(t, "b", 0, nil)
	cfg := defaults()
	tp := startProxy(t, cfg)
	ups := map[UpstreamKey]Upstream{
		key("ns", "sa", "http"): {Endpoints: []netipAddrPort{a.addr(t)}},
		key("ns", "sb", "http"): {Endpoints: []netipAddrPort{b.addr(t)}},
	}
	ingA := ingress("ns", "ing-a", "nginx", map[string]string{"a.example/": "sa:http"}, nil)
	ingB := ingress("ns", "ing-b", "nginx", map[string]string{"b.example/": "sb:http"}, nil)
	tp.swap(cfg, []*networkingv1.Ingress{ingA, ingB}, ups)
	c := client(t)
	for _, h := range []string{"a.example", "b.example", "none.example"} {
		get(t, c, tp.httpURL+"/", h)
	}
	series := func(name string, labels map[string]string) float64 {
		return tp.metric(t, name, labels)
	}
	eventually(t, "three requests counted", func() bool {
		return series("fjord_ingress_requests_total", nil) == 3
	})
	bLabels := map[string]string{"ingress": "ing-b", "namespace": "ns", "service": "sb"}
	if series("fjord_ingress_requests_total", bLabels) != 1 || series("fjord_ingress_request_duration_seconds", bLabels) != 1 {
		t.Fatal("ing-b's series are missing before the delete")
	}

	tp.swap(cfg, []*networkingv1.Ingress{ingA}, ups) // ing-b deleted
	for _, name := range []string{"fjord_ingress_requests_total", "fjord_ingress_request_duration_seconds", "fjord_ingress_upstream_response_seconds"} {
		if n := countSeries(t, tp, name, bLabels); n != 0 {
			t.Errorf("%s: %d series of the deleted ing-b left", name, n)
		}
		if n := countSeries(t, tp, name, map[string]string{"ingress": "ing-a"}); n != 1 {
			t.Errorf("%s: %d series of ing-a, want 1", name, n)
		}
	}
	if n := countSeries(t, tp, "fjord_ingress_requests_total", map[string]string{"ingress": ""}); n != 1 {
		t.Errorf("unmatched requests: %d series, want 1 (kept)", n)
	}
	// The Service behind ing-a changes: sa's series go, sb's come when used.
	ingA2 := ingress("ns", "ing-a", "nginx", map[string]string{"a.example/": "sb:http"}, nil)
	tp.swap(cfg, []*networkingv1.Ingress{ingA2}, ups)
	if n := countSeries(t, tp, "fjord_ingress_requests_total", map[string]string{"service": "sa"}); n != 0 {
		t.Errorf("%d series of service sa left after no Ingress routes to it", n)
	}
	get(t, c, tp.httpURL+"/", "a.example")
	eventually(t, "the request to the new service counted", func() bool {
		return series("fjord_ingress_requests_total", map[string]string{"ingress": "ing-a", "service": "sb"}) == 1
	})
}

// countSeries counts the series of name whose labels include want.
func countSeries(t *testing.T, tp *testProxy, name string, want map[string]string) int {
	t.Helper()
	n := 0
	tp.eachSeries(t, name, want, func(*dto.Metric) { n++ })
	return n
}

// eventually polls cond until it holds, for at most ten seconds: the proxy
// counts a request after it has answered it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}
