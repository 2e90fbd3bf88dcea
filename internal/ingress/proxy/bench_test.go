package proxy

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxyGET measures a small GET through the proxy over
// keep-alive connections, with the access log on. Run on demand:
// go test -run '^$' -bench ProxyGET ./internal/ingress/proxy/
func BenchmarkProxyGET(b *testing.B) {
	be := startBackend(b, "be", 0, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	tp := startProxy(b, defaults())
	tp.swap(defaults(), nil, nil)
	cfg := defaults()
	tp.p.Swap(&Snapshot{Routes: routeFor(b, "h.example", "s"), Upstreams: map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{be.addr(b)}}}, Config: cfg})
	c := client(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := mustRequest(b, "GET", tp.httpURL+"/", "h.example")
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	})
}
