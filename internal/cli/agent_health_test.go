package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

func TestProxyHealthAddrs(t *testing.T) {
	node := netip.MustParseAddr("198.18.0.11")
	for _, tc := range []struct {
		healthz, metrics string
		wantHealthz      []string
		wantMetrics      string
	}{
		// kube-proxy's default is 0.0.0.0:10256; fjord narrows it to the node and loopback.
		{"", "", []string{"198.18.0.11:10256", "127.0.0.1:10256"}, "127.0.0.1:10249"},
		{"0.0.0.0:10256", "0.0.0.0:10249", []string{"0.0.0.0:10256"}, "0.0.0.0:10249"}, // as given
		{"198.18.0.11", "::1", []string{"198.18.0.11:10256"}, "[::1]:10249"},
	} {
		pc := parseProxyConfig(t, tc.healthz, tc.metrics)
		h, m := proxyHealthAddrs(pc, node)
		if !slices.Equal(h, tc.wantHealthz) || m != tc.wantMetrics {
			t.Errorf("%q %q: %v %q, want %v %q", tc.healthz, tc.metrics, h, m, tc.wantHealthz, tc.wantMetrics)
		}
	}
}

func parseProxyConfig(t *testing.T, healthz, metrics string) *proxyconfig.Config {
	t.Helper()
	doc := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
	if healthz != "" {
		doc += "healthzBindAddress: \"" + healthz + "\"\n"
	}
	if metrics != "" {
		doc += "metricsBindAddress: \"" + metrics + "\"\n"
	}
	pc, err := proxyconfig.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// TestServeProxyHealth serves on loopback ports from the configuration
// and checks /livez, /healthz and kube-proxy's metric names on /metrics.
func TestServeProxyHealth(t *testing.T) {
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	hz, mz := free(), free()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The agent's one registry: what else registers there (the RTT prober) is
	// served on the same /metrics.
	reg := newAgentRegistry()
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "fjord_node_probes_total", Help: "stand-in for the RTT prober's"})
	reg.MustRegister(other)
	other.Inc()
	h, err := serveProxyHealth(ctx, parseProxyConfig(t, hz, mz), netip.MustParseAddr("127.0.0.1"), nil, reg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	h.Synced(servicemap.Map{Ports: map[string]servicemap.ServicePort{}}, true, time.Now(), nil)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/livez", "/healthz"} {
		if code, body := get("http://" + hz + path); code != 200 || !strings.Contains(body, `"lastUpdated"`) {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	code, body := get("http://" + mz + "/metrics")
	for _, want := range []string{"fjord_node_probes_total 1", "kubeproxy_sync_proxy_rules_duration_seconds_count 1", "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "kubeproxy_proxy_livez_total{code=\"200\"} 1", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q (status %d)", want, code)
		}
	}
	// The upstream suite asks kube-proxy's metrics port which mode runs.
	if code, body := get("http://" + mz + "/proxyMode"); code != 200 || body != "nftables" {
		t.Errorf("/proxyMode: %d %q", code, body)
	}
	// A taken address is an error naming the field, the Health works regardless,
	// and the listener is opened once the address is free.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := ln.Addr().String()
	h2, err := serveProxyHealth(ctx, parseProxyConfig(t, taken, free()), netip.MustParseAddr("127.0.0.1"), nil, nil, discardLogger())
	if err == nil || !strings.Contains(err.Error(), "healthzBindAddress "+taken) || h2 == nil {
		t.Fatalf("taken healthz address: %v (health %v)", err, h2)
	}
	ln.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + taken + "/livez")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the healthz listener was not opened once its address was free: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
