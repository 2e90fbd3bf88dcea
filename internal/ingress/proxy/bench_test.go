package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
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

// BenchmarkProxyRaw measures the proxy alone: one keep-alive client
// connection and a backend that both speak raw, allocation-free HTTP/1.1,
// so ns/op and allocs/op are the proxy's (plus the loopback). The
// net-http sub-benchmark is the reference path (Options.NetHTTPOnly).
// go test -run '^$' -bench ProxyRaw ./internal/ingress/proxy/
func BenchmarkProxyRaw(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{{"h1", Options{}}, {"net-http", Options{NetHTTPOnly: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			be := startCannedBackend(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 128\r\n\r\n"+strings.Repeat("x", 128))
			cfg := defaults()
			cfg.KeepAliveRequests = 0 // one connection for all of b.N
			tp := startProxyWith(b, cfg, bc.opts)
			tp.p.Swap(&Snapshot{Routes: routeFor(b, "h.example", "s"), Upstreams: map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{be}}}, Config: cfg})
			c, err := net.Dial("tcp", tp.httpURL[len("http://"):])
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET / HTTP/1.1\r\nHost: h.example\r\nUser-Agent: bench\r\n\r\n")
			resp := &response{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				raw, err := readHead(br, resp.raw, nil)
				resp.raw = raw
				if err != nil || !resp.parse(false) || resp.status != 200 {
					b.Fatalf("response: %v %q", err, raw)
				}
				if _, err := br.Discard(int(resp.contentLength)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startCannedBackend answers every request (heads only, no bodies) with
// answer, without allocating per request.
func startCannedBackend(b *testing.B, answer string) netipAddrPort {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	ans := []byte(answer)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if isEmptyLine(line) {
						if _, err := c.Write(ans); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return addrOf(b, l)
}
