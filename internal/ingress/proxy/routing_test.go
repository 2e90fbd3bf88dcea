package proxy

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestRoutesToBackendsByHostAndPath(t *testing.T) {
	a := startBackend(t, "a", 0, nil)
	b := startBackend(t, "b", 0, nil)
	tp := startProxy(t, defaults())
	tp.swap(defaults(), []*networkingv1.Ingress{
		ingress("shop", "web", "nginx", map[string]string{
			"shop.example/":    "front:http",
			"shop.example/api": "api:http",
		}, nil),
		ingress("shop", "empty", "nginx", map[string]string{"empty.example/": "none:http"}, nil),
	}, map[UpstreamKey]Upstream{
		key("shop", "front", "http"): {Endpoints: []netipAddrPort{a.addr(t)}},
		key("shop", "api", "http"):   {Endpoints: []netipAddrPort{b.addr(t)}},
	})
	c := client(t)
	for _, tc := range []struct {
		host, path string
		status     int
		body       string
	}{
		{"shop.example", "/", 200, "a"},
		{"shop.example", "/api", 200, "b"},
		{"shop.example", "/api/v1/items", 200, "b"},
		{"shop.example", "/apix", 200, "a"},
		{"SHOP.example:80", "/api", 200, "b"},
		{"other.example", "/", 404, "default backend - 404\n"},
		{"empty.example", "/", 503, ""},
	} {
		status, body, _ := get(t, c, tp.httpURL+tc.path, tc.host)
		if status != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("%s%s: got %d %q, want %d %q", tc.host, tc.path, status, body, tc.status, tc.body)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	a := startBackend(t, "a", 0, nil)
	tp := startProxy(t, defaults())
	tp.swap(defaults(), []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"h.example/": "s:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{a.addr(t)}}})
	c := client(t)
	req := mustRequest(t, "GET", tp.httpURL+"/x?y=1", "h.example")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.mu.Lock()
	h := a.last.Header
	host, uri := a.last.Host, a.last.RequestURI
	a.mu.Unlock()
	port := tp.httpURL[strings.LastIndex(tp.httpURL, ":")+1:]
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Real-Ip":         "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "h.example",
		"X-Forwarded-Port":  port,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if id := h.Get("X-Request-Id"); len(id) != 32 {
		t.Errorf("X-Request-ID = %q, want 32 hex characters", id)
	}
	if host != "h.example" || uri != "/x?y=1" {
		t.Errorf("upstream saw Host %q URI %q", host, uri)
	}
	// A client's X-Request-ID is kept.
	req = mustRequest(t, "GET", tp.httpURL+"/", "h.example")
	req.Header.Set("X-Request-ID", "abc")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if got := a.last.Header.Get("X-Request-Id"); got != "abc" {
		t.Errorf("X-Request-ID = %q, want the client's abc", got)
	}
}
