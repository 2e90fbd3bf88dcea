package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/ingress/ingresstest"
	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

// recordingSink swaps Snapshots into a proxy and its frontends and keeps
// the latest one.
type recordingSink struct {
	p      *proxy.Proxy
	fronts []*proxy.Frontend
	mu     sync.Mutex
	last   *proxy.Snapshot
	n      int
}

func (s *recordingSink) Swap(snap *proxy.Snapshot) {
	s.p.Swap(snap)
	for _, f := range s.fronts {
		f.Apply(snap.Config)
	}
	s.mu.Lock()
	s.last, s.n = snap, s.n+1
	s.mu.Unlock()
}

func (s *recordingSink) latest() (*proxy.Snapshot, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.n
}

// syncBuffer is a concurrency-safe writer.
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

// eventually polls cond every 20ms for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func apply(t *testing.T, st *store.Store, yaml string) {
	t.Helper()
	objs, err := objects.Decode(strings.NewReader(yaml), "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := objects.Validate(o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
}

func applyObjects(t *testing.T, st *store.Store, objs ...objects.Object) {
	t.Helper()
	for _, o := range objs {
		if err := objects.Validate(o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
}

const appYAML = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: %d, protocol: TCP}
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
- addresses: [127.0.0.2]
  conditions: {ready: false}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: demo}
spec:
  ingressClassName: nginx
  tls:
  - hosts: [web.example]
    secretName: web-tls
  rules:
  - host: web.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /num, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`

func TestControllerRoutesStoreObjectsAndKeepsLastGoodConfig(t *testing.T) {
	env := storetest.Start(t)
	st := env.Store

	// The backend, reached only through the EndpointSlice.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from web %s", r.URL.Path)
	})}
	go backend.Serve(bl)
	t.Cleanup(func() { backend.Close() })
	backendPort := bl.Addr().(*net.TCPAddr).Port

	seed, err := os.ReadFile("testdata/nginx-configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, st, string(seed))
	apply(t, st, fmt.Sprintf(appYAML, backendPort))
	crt, key := ingresstest.CertPEM(t, "web.example")
	applyObjects(t, st, &corev1.Secret{
		TypeMeta:   metav1TypeMeta("v1", "Secret"),
		ObjectMeta: objectMeta("demo", "web-tls"),
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": crt, "tls.key": key},
	})

	// Proxy, frontends and controller.
	accessLog := &syncBuffer{}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	p, err := proxy.New(proxy.Options{AccessLog: accessLog, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	lh, _ := net.Listen("tcp", "127.0.0.1:0")
	ls, _ := net.Listen("tcp", "127.0.0.1:0")
	cfg0 := p.Snapshot().Config
	fh := proxy.NewFrontend(lh, p, nil, cfg0, logger)
	fs := proxy.NewFrontend(ls, p, p.TLSConfig(), cfg0, logger)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fh.Shutdown(ctx)
		fs.Shutdown(ctx)
		p.Close()
	})
	sink := &recordingSink{p: p, fronts: []*proxy.Frontend{fh, fs}}
	src := source.New(source.NewStore(st), 0)
	ctl, err := New(Config{Source: src, Sink: sink, NumCPU: 2, MinSyncInterval: time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src.Start(ctx)
	done := make(chan struct{})
	go func() { ctl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "web.example"}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(url string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "web.example"
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	httpsURL := "https://" + ls.Addr().String()
	eventually(t, "the ingress to route", func() bool {
		code, body := do(httpsURL + "/hi")
		return code == 200 && body == "hello from web /hi"
	})
	if code, body := do(httpsURL + "/num/x"); code != 200 || body != "hello from web /num/x" {
		t.Errorf("port by number: %d %q", code, body)
	}
	// ssl-redirect: plain HTTP to a TLS host is redirected.
	if code, _ := do("http://" + lh.Addr().String() + "/hi"); code != http.StatusPermanentRedirect {
		t.Errorf("http to a TLS host: %d, want 308", code)
	}
	// The Secret's certificate is served for its host.
	conn, err := tls.Dial("tcp", ls.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "web.example"})
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "web.example" {
		t.Errorf("certificate CN %q, want web.example", cn)
	}
	conn.Close()

	snap, _ := sink.latest()
	if got := snap.Config.UpstreamKeepaliveConnections; got != 64 {
		t.Fatalf("upstream-keepalive-connections = %d, want the seed's 64", got)
	}
	if got := len(snap.Upstreams[proxyKey("demo", "web", "http")].Endpoints); got != 1 {
		t.Errorf("ready endpoints = %d, want 1 (the not-ready one is left out)", got)
	}

	// The access log line has the seed's shape. The proxy logs a request
	// once it has answered it, so the client may be ahead of the line.
	eventually(t, "the access log line", func() bool {
		return lineWith(accessLog.String(), `"GET /num/x `) != ""
	})
	line := lineWith(accessLog.String(), `"GET /num/x `)
	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /num/x HTTP/1\.1" 200 \d+ "-" "Go-http-client/1\.1" \d+ \d+\.\d{3} \[upstream-demo-web-80\] 127\.0\.0\.1:\d+ \d+ \d+\.\d{3} 200 [0-9a-f]{32}$`)
	if !re.MatchString(line) {
		t.Errorf("access log line does not have the seed's shape:\n%s", line)
	}
	// The seed's format has 17 space-separated tokens; $time_local and
	// $request add 1 and 2 spaces.
	if got, want := len(strings.Fields(line)), 20; got != want {
		t.Errorf("access log line has %d fields, want %d", got, want)
	}

	// A bad value keeps the last good configuration.
	apply(t, st, strings.Replace(string(seed), `keep-alive: "75"`, `keep-alive: "soon"`, 1))
	eventually(t, "the bad value to be reported", func() bool {
		return strings.Contains(logs.String(), `keep-alive: \"soon\"`)
	})
	snap, _ = sink.latest()
	if snap.Config.UpstreamKeepaliveConnections != 64 || snap.Config.KeepAlive != 75*time.Second {
		t.Errorf("after a bad value the config changed: %+v", snap.Config)
	}
	if code, _ := do(httpsURL + "/still"); code != 200 {
		t.Errorf("after a bad value: %d", code)
	}
	// A good change is applied; an unknown key is reported once.
	apply(t, st, strings.Replace(string(seed), `upstream-keepalive-connections: "64"`, "upstream-keepalive-connections: \"32\"\n  fancy-key: \"x\"", 1))
	eventually(t, "the new value", func() bool {
		snap, _ := sink.latest()
		return snap.Config.UpstreamKeepaliveConnections == 32
	})
	if n := strings.Count(logs.String(), "key=fancy-key"); n != 1 {
		t.Errorf("unknown key reported %d times, want once\n%s", n, logs.String())
	}

	// Endpoints going away: 503; coming back: 200.
	apply(t, st, strings.Replace(fmt.Sprintf(appYAML, backendPort), "{ready: true}", "{ready: false}", 1))
	eventually(t, "503 without ready endpoints", func() bool { code, _ := do(httpsURL + "/"); return code == 503 })
	apply(t, st, fmt.Sprintf(appYAML, backendPort))
	eventually(t, "200 again", func() bool { code, _ := do(httpsURL + "/"); return code == 200 })
}

// lineWith returns the last line of s containing sub.
func lineWith(s, sub string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
