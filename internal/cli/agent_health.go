package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/proxy/healthcheck"
)

// kube-proxy's default ports.
const (
	proxyHealthzPort = 10256
	proxyMetricsPort = 10249
)

// serveProxyHealth starts what kube-proxy serves besides the data plane, from the
// KubeProxyConfiguration, until ctx ends:
//
//   - healthzBindAddress: /healthz and /livez. Unset, kube-proxy listens on
//     0.0.0.0:10256; fjord listens on the node's address and loopback, port 10256.
//   - metricsBindAddress: /metrics (kube-proxy's metric names, Go and process
//     metrics, and whatever else is registered on reg, the agent's registry: the RTT
//     prober's) and /proxyMode. Unset: 127.0.0.1:10249, as kube-proxy.
//   - the healthCheckNodePort servers, on hcAddrs (the node addresses that take
//     NodePorts), opened as syncs call for them.
//
// An address given in the file is used as given; an IP without a port gets the
// default port. The returned Health is the service proxy's Deps.Health; it is
// returned even when a listener cannot be opened (the address is taken): the error
// names the field and address, and the listener is tried again every few seconds,
// because the data plane must not wait for its probes.
func serveProxyHealth(ctx context.Context, pc *proxyconfig.Config, nodeIP netip.Addr, hcAddrs []netip.Addr, reg *prometheus.Registry, log *slog.Logger) (*healthcheck.Health, error) {
	if reg == nil {
		reg = newAgentRegistry()
	}
	h := healthcheck.New(healthcheck.Config{SyncPeriod: pc.SyncPeriod, NodeIPs: hcAddrs, Registerer: reg, Log: log.With("component", "proxy-health")})
	go func() { <-ctx.Done(); h.Close() }()
	healthz, metrics := proxyHealthAddrs(pc, nodeIP)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// kube-proxy answers which data plane it runs here; fjord's is always nftables,
	// whatever mode the configuration names (ipvs's schedulers included).
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "nftables")
	})
	errs := []error{serveHelper(ctx, "metricsBindAddress", metrics, mux, log)}
	for _, a := range healthz {
		errs = append(errs, serveHelper(ctx, "healthzBindAddress", a, h.Handler(), log))
	}
	return h, errors.Join(errs...)
}

// serveHelper serves handler on addr until ctx ends. When addr cannot be listened
// on, it returns the error and keeps trying every 5 seconds in the background.
func serveHelper(ctx context.Context, field, addr string, handler http.Handler, log *slog.Logger) error {
	serve := func(ln net.Listener) {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		log.Info("service proxy "+field, "address", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("service proxy "+field+" stopped", "address", addr, "err", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		go serve(ln)
		return nil
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			if ln, err := net.Listen("tcp", addr); err == nil {
				serve(ln)
				return
			}
		}
	}()
	return fmt.Errorf("%s %s: %w (retrying every 5s)", field, addr, err)
}

// newAgentRegistry is the agent's one metrics registry, with Go and process metrics:
// what other parts of the agent (the RTT prober) register on is served beside the
// service proxy's metrics on metricsBindAddress.
func newAgentRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// proxyHealthAddrs returns where /healthz and /livez, and /metrics, listen.
func proxyHealthAddrs(pc *proxyconfig.Config, nodeIP netip.Addr) (healthz []string, metrics string) {
	healthz = []string{net.JoinHostPort(nodeIP.String(), strconv.Itoa(proxyHealthzPort)), net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyHealthzPort))}
	if a := pc.Raw.HealthzBindAddress; a != "" {
		healthz = []string{withDefaultPort(a, proxyHealthzPort)}
	}
	metrics = net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyMetricsPort))
	if a := pc.Raw.MetricsBindAddress; a != "" {
		metrics = withDefaultPort(a, proxyMetricsPort)
	}
	return healthz, metrics
}

// withDefaultPort appends port to an address that is only an IP, as kube-proxy
// does with healthzBindAddress and metricsBindAddress.
func withDefaultPort(addr string, port int) string {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return net.JoinHostPort(ip.String(), strconv.Itoa(port))
	}
	return addr
}

// nodePortIPs are the addresses healthCheckNodePort servers listen on: the node's,
// unless nodePortAddresses leaves it without NodePorts (as runOnce decides for the
// nftables proxier).
func nodePortIPs(pc *proxyconfig.Config, nodeIP netip.Addr) []netip.Addr {
	if len(pc.NodePortAddresses) > 0 && !slices.ContainsFunc(pc.NodePortAddresses, func(p netip.Prefix) bool { return p.Contains(nodeIP) }) {
		return nil
	}
	return []netip.Addr{nodeIP}
}
