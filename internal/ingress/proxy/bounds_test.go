package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// startSimple runs a proxy routing host h to one backend, with cfg.
func startSimple(t *testing.T, cfg nginxconf.Config, h http.HandlerFunc) *testProxy {
	t.Helper()
	b := startBackend(t, "b", 0, h)
	tp := startProxy(t, cfg)
	tp.swap(cfg, []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"h/": "s:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{b.addr(t)}}})
	return tp
}

// rawStatus sends raw on a new connection and returns the response's
// status and body.
func rawStatus(t *testing.T, tp *testProxy, raw string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(tp.httpURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, raw) // the proxy may answer before it has read everything
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRequestHeadBuffers: large-client-header-buffers as nginx applies it,
// with nginx's answers (414 for the request line, 400 "Request Header Or
// Cookie Too Large" for headers), and the ConfigMap key raising it.
func TestRequestHeadBuffers(t *testing.T) {
	cfg := defaults()
	tp := startSimple(t, cfg, nil)
	req := func(target string, headers ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: h\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
	}
	hdr := func(name string, n int) string { return name + ": " + strings.Repeat("v", n-len(name)-2) + "\r\n" }
	long := "/" + strings.Repeat("a", 8190-len("GET / HTTP/1.1"))
	many := func(n int) []string {
		var hs []string
		for i := range n {
			hs = append(hs, hdr(fmt.Sprintf("X%d", i), 4000))
		}
		return hs
	}
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		body   string
	}{
		{"request line of 8190", req(long), 200, ""},
		{"request line of 8191", req(long + "a"), 414, "414 Request-URI Too Large"},
		{"header of 8190", req("/", hdr("X", 8190)), 200, ""},
		{"header of 8191", req("/", hdr("X", 8191)), 400, "400 Request Header Or Cookie Too Large"},
		{"8 headers of 4000", req("/", many(8)...), 200, ""},
		{"9 headers of 4000", req("/", many(9)...), 400, "400 Request Header Or Cookie Too Large"},
		{"a 1 MiB header", req("/", hdr("X", 1<<20)), 400, "400 Request Header Or Cookie Too Large"},
	} {
		status, body := rawStatus(t, tp, tc.raw)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, body, tc.status, tc.body)
		}
	}
	cfg.LargeClientHeaderBuffers = nginxconf.HeadBuffers{Count: 4, Size: 16 << 10}
	tp2 := startSimple(t, cfg, nil)
	if status, _ := rawStatus(t, tp2, req("/", hdr("X", 8191))); status != 200 {
		t.Errorf("header of 8191 with 4 16k buffers: %d, want 200", status)
	}
}

// TestRequestBodyStreamed: a body larger than client-body-buffer-size
// reaches the upstream while the client is still sending it; it is never
// held whole. The client sends half, waits until the upstream has read
// more than client-body-buffer-size of it, then sends the rest.
func TestRequestBodyStreamed(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			const size = 256 << 10
			seen := make(chan struct{})
			tp := startSimple(t, defaults(), func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.ReadFull(r.Body, make([]byte, 32<<10))
				if n == 32<<10 {
					close(seen)
				}
				rest, _ := io.Copy(io.Discard, r.Body)
				fmt.Fprintf(w, "%d", int64(n)+rest)
			})
			c, err := net.DialTimeout("tcp", strings.TrimPrefix(tp.httpURL, "http://"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			half := strings.Repeat("x", size/2)
			framing := fmt.Sprintf("Content-Length: %d\r\n", size)
			part := half
			if chunked {
				framing = "Transfer-Encoding: chunked\r\n"
				part = fmt.Sprintf("%x\r\n%s\r\n", len(half), half)
			}
			if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\n"+framing+"\r\n"+part); err != nil {
				t.Fatal(err)
			}
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream got no 32 KiB of the body while the client was sending it: the proxy holds bodies whole")
			}
			if chunked {
				part += "0\r\n\r\n"
			}
			if _, err := io.WriteString(c, part); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != fmt.Sprint(size) {
				t.Fatalf("%d %q, want 200 %d", resp.StatusCode, b, size)
			}
		})
	}
}

// TestMaxWorkerConnections: worker-processes × max-worker-connections
// client connections are served at once; the next one waits (in the
// kernel's backlog) until one of them ends, then is served.
func TestMaxWorkerConnections(t *testing.T) {
	cfg := defaults()
	cfg.WorkerProcesses, cfg.MaxWorkerConnections = 1, 2
	tp := startSimple(t, cfg, nil)
	addr := strings.TrimPrefix(tp.httpURL, "http://")
	open := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	answered := func(c net.Conn, br *bufio.Reader, within time.Duration) error {
		c.SetReadDeadline(time.Now().Add(within))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	c1, br1 := open()
	c2, br2 := open()
	for _, x := range []struct {
		c  net.Conn
		br *bufio.Reader
	}{{c1, br1}, {c2, br2}} {
		if err := answered(x.c, x.br, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c3, br3 := open()
	if err := answered(c3, br3, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection over max-worker-connections 2: %v, want no answer while two are held", err)
	}
	if n := tp.http.Conns(); n != 2 {
		t.Fatalf("Conns() = %d, want 2", n)
	}
	c1.Close()
	if err := answered(c3, br3, 10*time.Second); err != nil {
		t.Fatalf("the third connection after one ended: %v", err)
	}
}
