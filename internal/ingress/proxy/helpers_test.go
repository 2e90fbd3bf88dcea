package proxy

import (
	"bytes"
	"context"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

// ingress builds an Ingress with one rule per "host/path" -> service:port.
func ingress(ns, name string, class string, rules map[string]string, tlsHosts map[string][]string) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if class != "" {
		ing.Spec.IngressClassName = &class
	}
	prefix := networkingv1.PathTypePrefix
	for hostPath, svc := range rules {
		host, path, _ := cut(hostPath, "/")
		svcName, port, _ := cut(svc, ":")
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{
			Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path: "/" + path, PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: svcName, Port: networkingv1.ServiceBackendPort{Name: port},
					}},
				}},
			}},
		})
	}
	for secret, hosts := range tlsHosts {
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: hosts, SecretName: secret})
	}
	return ing
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// addrOf returns the AddrPort of a listener.
func addrOf(t testing.TB, l net.Listener) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// backend is a loopback HTTP server that answers with its name, echoes
// request headers it is asked about, and counts requests.
type backend struct {
	name string
	l    net.Listener
	srv  *http.Server
	mu   sync.Mutex
	n    int
	last *http.Request
}

func startBackend(t testing.TB, name string, idle time.Duration, h http.HandlerFunc) *backend {
	t.Helper()
	return startBackendOn(t, name, idle, nil, h)
}

// startBackendOn is startBackend with the listener wrapped by wrap.
func startBackendOn(t testing.TB, name string, idle time.Duration, wrap func(net.Listener) net.Listener, h http.HandlerFunc) *backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, l: l}
	served := l
	if wrap != nil {
		served = wrap(l)
	}
	b.srv = &http.Server{IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.n++
		b.last = r.Clone(context.Background())
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	})}
	go b.srv.Serve(served)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *backend) addr(t testing.TB) netip.AddrPort { return addrOf(t, b.l) }

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// testProxy is a Proxy served by plain and TLS Frontends on loopback.
type testProxy struct {
	p         *Proxy
	http      *Frontend
	https     *Frontend
	log       *syncBuffer
	reg       *prometheus.Registry
	httpURL   string
	httpsAddr string
}

func startProxy(t testing.TB, cfg nginxconf.Config) *testProxy {
	t.Helper()
	return startProxyWith(t, cfg, Options{})
}

// startProxyWith is startProxy with extra Options (the access log,
// registry and HTTPS port are the test's).
func startProxyWith(t testing.TB, cfg nginxconf.Config, opts Options) *testProxy {
	t.Helper()
	lh, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		lh.Close()
		t.Fatal(err)
	}
	tp := &testProxy{log: &syncBuffer{}, reg: prometheus.NewRegistry()}
	opts.AccessLog, opts.Registerer, opts.HTTPSPort = tp.log, tp.reg, int(addrOf(t, ls).Port())
	tp.p, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tp.http = NewFrontend(lh, tp.p, nil, cfg, nil)
	tp.https = NewFrontend(ls, tp.p, tp.p.TLSConfig(), cfg, nil)
	tp.httpURL = "http://" + lh.Addr().String()
	tp.httpsAddr = ls.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tp.http.Shutdown(ctx)
		tp.https.Shutdown(ctx)
		tp.p.Close()
	})
	return tp
}

// swap installs routes from ingresses with the given upstreams and config.
func (tp *testProxy) swap(cfg nginxconf.Config, ings []*networkingv1.Ingress, ups map[UpstreamKey]Upstream) {
	tp.p.Swap(&Snapshot{Routes: route.Build(ings, "nginx", true), Upstreams: ups, Config: cfg})
}

func key(ns, svc, port string) UpstreamKey {
	return UpstreamKey{Namespace: ns, Service: svc, Port: route.Port{Name: port}}
}

// client returns an HTTP client with its own transport (never the default).
func client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t testing.TB, c *http.Client, url, host string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// syncBuffer is a concurrency-safe access log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func defaults() nginxconf.Config { return nginxconf.Defaults(2) }

type netipAddrPort = netip.AddrPort

func mustRequest(t testing.TB, method, url, host string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

// metric sums the values of the counters or histogram counts named name
// whose labels include want.
func (tp *testProxy) metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	sum := 0.0
	tp.eachSeries(t, name, want, func(m *dto.Metric) {
		if c := m.GetCounter(); c != nil {
			sum += c.GetValue()
		}
		if h := m.GetHistogram(); h != nil {
			sum += float64(h.GetSampleCount())
		}
	})
	return sum
}

// eachSeries calls f for every series named name whose labels include want.
func (tp *testProxy) eachSeries(t testing.TB, name string, want map[string]string, f func(*dto.Metric)) {
	t.Helper()
	mfs, err := tp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			f(m)
		}
	}
}

type (
	nginxconfConfig       = nginxconf.Config
	nginxconfNextUpstream = nginxconf.NextUpstream
)

// routeFor routes host/ to service svc port "http" in namespace ns.
func routeFor(t testing.TB, host, svc string) *route.Table {
	return route.Build([]*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{host + "/": svc + ":http"}, nil)}, "nginx", true)
}
