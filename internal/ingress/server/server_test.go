package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

type addrs struct{ http, https, metrics net.Addr }

func TestRunServesRoutesMetricsAndShutsDownGracefully(t *testing.T) {
	env := storetest.Start(t)

	// A backend whose response takes a while, to prove shutdown waits.
	release, arrived := make(chan struct{}), make(chan struct{})
	seedWeb(t, env.Store, startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))

	accessLog := &lockedWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, done := startRun(t, ctx, Config{MetricsAddr: "127.0.0.1:0", AccessLog: accessLog, Source: source.New(source.NewStore(env.Store), 0)})

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	do := func(url, host string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	healthy := false
	for i := 0; i < 500 && !healthy; i++ {
		code, _ := do("http://"+a.metrics.String()+"/healthz", "")
		healthy = code == 200
		if !healthy {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !healthy {
		t.Fatal("/healthz never became ready")
	}
	if code, body := do("http://"+a.http.String()+"/x", "web.example"); code != 200 || body != "ok /x" {
		t.Fatalf("http: %d %q", code, body)
	}
	if code, body := do("https://"+a.https.String()+"/y", "web.example"); code != 200 || body != "ok /y" {
		t.Fatalf("https: %d %q", code, body)
	}
	// A request is counted just after its response is written: poll (bounded).
	wants := []string{
		`fjord_ingress_requests_total{ingress="web",namespace="demo",service="web",status="200"} 2`,
		`fjord_ingress_request_duration_seconds_count{ingress="web",namespace="demo",service="web"} 2`,
		`fjord_ingress_upstream_response_seconds_count{ingress="web",namespace="demo",service="web"} 2`,
		`fjord_ingress_upstream_connections_total{reused="true"} 1`,
		`go_goroutines`,
	}
	var metrics string
	for i := 0; i < 250; i++ {
		_, metrics = do("http://"+a.metrics.String()+"/metrics", "")
		all := true
		for _, want := range wants {
			all = all && strings.Contains(metrics, want)
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Graceful shutdown: an in-flight request finishes, then Run returns.
	var wg sync.WaitGroup
	var slowCode int
	var slowBody string
	wg.Add(1)
	go func() {
		defer wg.Done()
		slowCode, slowBody = do("http://"+a.http.String()+"/slow", "web.example")
	}()
	<-arrived
	cancel()
	// Shutdown has begun when the listener refuses new connections.
	refused := false
	for i := 0; i < 500 && !refused; i++ {
		conn, err := net.Dial("tcp", a.http.String())
		if err != nil {
			refused = true
			break
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if !refused {
		t.Error("the HTTP listener still accepts after shutdown began")
	}
	close(release)
	wg.Wait()
	if slowCode != 200 || slowBody != "ok /slow" {
		t.Errorf("in-flight request during shutdown: %d %q", slowCode, slowBody)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	if n := strings.Count(accessLog.String(), "[upstream-demo-web-http]"); n != 3 {
		t.Errorf("access log has %d proxied lines, want 3:\n%s", n, accessLog.String())
	}
}

// startRun runs the ingress on loopback ports with the seed's ConfigMap and class nginx
// (cfg gives the rest) until ctx ends, and returns its addresses once it listens and
// where Run's result will arrive.
func startRun(t *testing.T, ctx context.Context, cfg Config) (addrs, <-chan error) {
	t.Helper()
	cfg.HTTPAddr, cfg.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ConfigMap, cfg.Class, cfg.ShutdownTimeout = "ingress-nginx/nginx-configuration", "nginx", 10*time.Second
	got := make(chan addrs, 1)
	cfg.Listening = func(h, s, m net.Addr) { got <- addrs{h, s, m} }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case a := <-got:
		return a, done
	case err := <-done:
		t.Fatal(err)
	}
	return addrs{}, nil
}

// startBackend serves h on a loopback port until the test ends and returns the port.
func startBackend(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: h}
	go backend.Serve(bl)
	t.Cleanup(func() { backend.Close() })
	return bl.Addr().(*net.TCPAddr).Port
}

// seedWeb stores the seed's ConfigMap, a Service web with one endpoint on
// 127.0.0.1:port and an Ingress sending Host web.example to it.
func seedWeb(t *testing.T, st *store.Store, port int) {
	t.Helper()
	seed, err := os.ReadFile("../controller/testdata/nginx-configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(seed) + fmt.Sprintf(`
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: demo}
spec:
  ingressClassName: nginx
  rules:
  - host: web.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}]}
`, port)
	objs, err := objects.Decode(strings.NewReader(manifest), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
}

// TestNothingAnsweredBeforeRoutes: a request reaching an ingress that has not yet read
// its routes (a restart while the store is slow) waits for them and is answered from
// them, never with a 404 from an empty routing table.
func TestNothingAnsweredBeforeRoutes(t *testing.T) {
	env := storetest.Start(t)
	seedWeb(t, env.Store, startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) }))

	// The ingress reads the store through a link held until the request is in.
	st, link := env.Stalled(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	link.Hold()
	a, done := startRun(t, ctx, Config{Source: source.New(source.NewStore(st), 0)})
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+a.http.String()+"/early", nil)
		req.Host = "web.example"
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{code: resp.StatusCode, body: string(b)}
	}()
	select {
	case ans := <-answered:
		t.Fatalf("answered before it had its routes: %d %q %v", ans.code, ans.body, ans.err)
	case <-time.After(time.Second):
	}
	link.Release()
	select {
	case ans := <-answered:
		if ans.err != nil || ans.code != 200 || ans.body != "ok /early" {
			t.Fatalf("the early request got %d %q %v; want 200 from the backend", ans.code, ans.body, ans.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the early request was not answered once the routes were in")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
