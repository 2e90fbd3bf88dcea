package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestPathNormalisation sends the path-confusion class through the proxy
// with a "/" rule (front) and an "/api" rule (api): routing follows the
// path normalised as nginx does, the upstream is sent a target whose
// decoding is what was matched, and what nginx refuses gets 400. Both the
// hand-written HTTP/1 path and the net/http one.
func TestPathNormalisation(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{{"h1", Options{}}, {"net-http", Options{NetHTTPOnly: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			front := startBackend(t, "front", 0, nil)
			api := startBackend(t, "api", 0, nil)
			tp := startProxyWith(t, defaults(), mode.opts)
			tp.swap(defaults(), []*networkingv1.Ingress{
				ingress("ns", "web", "nginx", map[string]string{"h/": "front:http", "h/api": "api:http"}, nil),
			}, map[UpstreamKey]Upstream{
				key("ns", "front", "http"): {Endpoints: []netipAddrPort{front.addr(t)}},
				key("ns", "api", "http"):   {Endpoints: []netipAddrPort{api.addr(t)}},
			})
			addr := strings.TrimPrefix(tp.httpURL, "http://")
			for _, tc := range []struct {
				target  string
				status  int
				backend string
				sent    string // the upstream's request-target
			}{
				{"/api/x?q=1", 200, "api", "/api/x?q=1"},
				{"/api/../internal", 200, "front", "/internal"},
				{"/api/%2e%2e/internal", 200, "front", "/internal"},
				{"/api/..%2Finternal", 200, "front", "/internal"},
				{"/api/x/../../internal?a=/../b", 200, "front", "/internal?a=/../b"},
				{"//api", 200, "api", "/api"},
				{"//api/x", 200, "api", "/api/x"},
				{"/api/./x?q=1", 200, "api", "/api/x?q=1"},
				{"/internal%2F..%2Fapi/x", 200, "api", "/api/x"},
				{"/api%2Fx", 200, "api", "/api%2Fx"}, // only decoded: sent as the client wrote it
				{"/ap%69/x", 200, "api", "/ap%69/x"},
				{"/api/..;/internal", 200, "api", "/api/..;/internal"},
				{`/api\..\internal`, 200, "front", `/api\..\internal`},
				{"/api/...", 200, "api", "/api/..."},
				{"/api/%20x/./y", 200, "api", "/api/%20x/y"},
				{"http://h//api/x", 200, "api", "/api/x"},
				{"/../x", 400, "", ""},
				{"/%2e%2e/x", 400, "", ""},
				{"/api/%00", 400, "", ""},
				{"/api/x%zz", 400, "", ""},
				{"/api/x%", 400, "", ""},
			} {
				status, body := rawGet(t, addr, tc.target, "h")
				if status != tc.status || tc.backend != "" && body != tc.backend {
					t.Errorf("%s: %d %q, want %d %q", tc.target, status, body, tc.status, tc.backend)
					continue
				}
				if tc.backend == "" {
					continue
				}
				b := front
				if tc.backend == "api" {
					b = api
				}
				b.mu.Lock()
				sent := b.last.RequestURI
				b.mu.Unlock()
				if sent != tc.sent && !(mode.opts.NetHTTPOnly && sameDecoded(sent, tc.sent)) {
					t.Errorf("%s: upstream was sent %q, want %q", tc.target, sent, tc.sent)
				}
			}
			if mode.opts.NetHTTPOnly {
				return
			}
			if status, _ := rawGet(t, addr, "*", "h"); status != 400 {
				t.Errorf("GET *: %d, want 400 as nginx", status)
			}
		})
	}
}

// sameDecoded compares two request-targets after percent-decoding: Go's
// URL type re-encodes some characters (a backslash) the client sent raw.
func sameDecoded(a, b string) bool {
	da, err1 := url.PathUnescape(a)
	db, err2 := url.PathUnescape(b)
	return err1 == nil && err2 == nil && da == db
}

// rawGet sends one GET with target exactly as given and returns the status
// and body.
func rawGet(t *testing.T, addr, target, host string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
