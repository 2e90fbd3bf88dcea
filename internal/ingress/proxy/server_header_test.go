package proxy

import (
	"io"
	"net/http"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestServerHeader follows ingress-nginx: server-tokens false (the
// default) sends no Server header at all, the upstream's included; true
// sends the proxy's own, or the upstream's with allow-backend-server-header.
func TestServerHeader(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{{"h1", Options{}}, {"net-http", Options{NetHTTPOnly: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			withServer := startBackend(t, "a", 0, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Server", "gunicorn")
				io.WriteString(w, "a")
			})
			without := startBackend(t, "b", 0, nil)
			tp := startProxyWith(t, defaults(), mode.opts)
			ings := []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"a.example/": "sa:http", "b.example/": "sb:http"}, nil)}
			ups := map[UpstreamKey]Upstream{
				key("ns", "sa", "http"): {Endpoints: []netipAddrPort{withServer.addr(t)}},
				key("ns", "sb", "http"): {Endpoints: []netipAddrPort{without.addr(t)}},
			}
			c := client(t)
			server := func(host string) []string {
				req := mustRequest(t, "GET", tp.httpURL+"/", host)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.Header.Values("Server")
			}
			for _, tc := range []struct {
				name          string
				tokens, allow bool
				upstream      []string // from the backend that sends one
				plain         []string // from the backend that sends none
				notFound      []string // the proxy's own 404
			}{
				{"defaults", false, false, nil, nil, nil},
				{"allow-backend-server-header alone", false, true, nil, nil, nil},
				{"server-tokens", true, false, []string{"fjord"}, []string{"fjord"}, []string{"fjord"}},
				{"server-tokens and allow-backend-server-header", true, true, []string{"gunicorn"}, []string{"fjord"}, []string{"fjord"}},
			} {
				cfg := defaults()
				cfg.ServerTokens, cfg.AllowBackendServerHeader = tc.tokens, tc.allow
				tp.swap(cfg, ings, ups)
				if got := server("a.example"); !slices.Equal(got, tc.upstream) {
					t.Errorf("%s: upstream with Server: %q, want %q", tc.name, got, tc.upstream)
				}
				if got := server("b.example"); !slices.Equal(got, tc.plain) {
					t.Errorf("%s: upstream without Server: %q, want %q", tc.name, got, tc.plain)
				}
				if got := server("nothing.example"); !slices.Equal(got, tc.notFound) {
					t.Errorf("%s: 404: %q, want %q", tc.name, got, tc.notFound)
				}
			}
		})
	}
}
