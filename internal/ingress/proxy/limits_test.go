package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// oneRoute points h.example at the given backends.
func oneRoute(t *testing.T, tp *testProxy, cfg nginxconfConfig, bes ...*backend) {
	var eps []netipAddrPort
	for _, b := range bes {
		eps = append(eps, b.addr(t))
	}
	tp.swap(cfg, []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"h.example/": "s:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: eps}})
}

func TestSlowlorisCannotBlockOtherClients(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	cfg.ClientHeaderTimeout = time.Second
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	addr := tp.httpURL[len("http://"):]

	// 200 slow clients, each sending a header byte every 200ms.
	const slow = 200
	var conns []net.Conn
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h.example\r\nX-Slow: ")
		conns = append(conns, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	closedByServer := make(chan int, slow)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ { // at most 20s
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte("a")); err != nil {
					closedByServer <- i
					return
				}
			}
		}()
	}
	// Normal clients are served meanwhile.
	hc := client(t)
	for i := 0; i < 20; i++ {
		if code, body, _ := get(t, hc, tp.httpURL+"/", "h.example"); code != 200 || body != "be" {
			t.Fatalf("normal request %d during slowloris: %d %q", i, code, body)
		}
	}
	// Every slow connection is cut by client-header-timeout.
	deadline := time.After(15 * time.Second)
	for n := 0; n < slow; n++ {
		select {
		case <-closedByServer:
		case <-deadline:
			close(stop)
			wg.Wait()
			t.Fatalf("only %d of %d slow connections were closed by the proxy", n, slow)
		}
	}
	close(stop)
	wg.Wait()
}

func TestKeepAliveRequestsClosesClientConnection(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	cfg.KeepAliveRequests = 3
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	var fresh int
	var closes []int
	for i := 1; i <= 7; i++ {
		req := mustRequest(t, "GET", tp.httpURL+"/", "h.example")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if !info.Reused {
					fresh++
				}
			},
		}))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			closes = append(closes, i)
		}
	}
	if fresh != 3 || fmt.Sprint(closes) != "[3 6]" {
		t.Errorf("7 requests with keep-alive-requests 3: %d connections, Connection: close on %v; want 3 and [3 6]", fresh, closes)
	}
}

func TestUpstreamKeepaliveRequestsBoundsUpstreamConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]int{}
	be := startBackend(t, "be", 0, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr]++
		mu.Unlock()
		io.WriteString(w, "be")
	})
	cfg := defaults()
	cfg.UpstreamKeepaliveRequests = 5
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	for i := 0; i < 20; i++ {
		if code, _, _ := get(t, hc, tp.httpURL+"/", "h.example"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 4 {
		t.Errorf("20 sequential requests with upstream-keepalive-requests 5 used %d upstream connections, want 4: %v", len(conns), conns)
	}
	for addr, n := range conns {
		if n != 5 {
			t.Errorf("upstream connection %s carried %d requests, want 5", addr, n)
		}
	}
}

func TestProxyBodySize(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	cfg.ProxyBodySize = 10
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	for _, tc := range []struct {
		body    string
		chunked bool
		want    int
	}{
		{"0123456789", false, 200},
		{"0123456789x", false, 413},
		{"0123456789", true, 200},
		{"0123456789x", true, 413},
	} {
		var r io.Reader = strings.NewReader(tc.body)
		if tc.chunked {
			r = io.MultiReader(r) // hides the length: sent chunked
		}
		req, _ := http.NewRequest("POST", tp.httpURL+"/", r)
		req.Host = "h.example"
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("body %q chunked=%v: %d, want %d", tc.body, tc.chunked, resp.StatusCode, tc.want)
		}
	}
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) netipAddrPort {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := addrOf(t, l)
	l.Close()
	return a
}

func TestNextUpstreamAndPassiveHealth(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	dead := deadAddr(t)
	tp := startProxy(t, defaults())
	tp.swap(defaults(), []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"h.example/": "s:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{dead, be.addr(t)}}})
	hc := client(t)
	// Every method succeeds: a refused connection sent nothing, so even
	// POST moves to the next endpoint.
	for i := 0; i < 30; i++ {
		method := []string{"GET", "POST", "PUT"}[i%3]
		req, _ := http.NewRequest(method, tp.httpURL+"/", strings.NewReader("data"))
		req.Host = "h.example"
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "be" {
			t.Fatalf("%s %d: %d %q", method, i, resp.StatusCode, body)
		}
	}
	// After 3 failures the dead endpoint is ejected: later requests do
	// not try it, so the access log shows a single upstream for them.
	lines := strings.Split(strings.TrimSpace(tp.log.String()), "\n")
	tried := 0
	for _, l := range lines {
		if strings.Contains(l, dead.String()) {
			tried++
		}
	}
	if tried != 3 {
		t.Errorf("the dead endpoint was tried by %d requests, want 3 (then ejected)\n%s", tried, strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], dead.String()+", "+be.addr(t).String()) || !strings.Contains(lines[0], " 502, 200 ") {
		t.Errorf("first request's log should list both attempts:\n%s", lines[0])
	}
}

func TestNextUpstreamOff(t *testing.T) {
	dead := deadAddr(t)
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	cfg.ProxyNextUpstream = nginxconfNextUpstream{}
	tp := startProxy(t, cfg)
	tp.swap(cfg, []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"h.example/": "s:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{dead, be.addr(t)}}})
	hc := client(t)
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		code, _, _ := get(t, hc, tp.httpURL+"/", "h.example")
		codes[code]++
	}
	if codes[502] == 0 || codes[200] == 0 {
		t.Errorf("with proxy-next-upstream off, round robin over a dead and a live endpoint gave %v; want some 502 and some 200", codes)
	}
}

func TestReadTimeoutGives504OrNextEndpoint(t *testing.T) {
	slow := startBackend(t, "slow", 0, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	fast := startBackend(t, "fast", 0, nil)
	cfg := defaults()
	cfg.ProxyReadTimeout = 200 * time.Millisecond
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, slow)
	hc := client(t)
	if code, _, _ := get(t, hc, tp.httpURL+"/", "h.example"); code != http.StatusGatewayTimeout {
		t.Errorf("slow upstream alone: %d, want 504", code)
	}
	oneRoute(t, tp, cfg, slow, fast)
	for i := 0; i < 4; i++ {
		if code, body, _ := get(t, hc, tp.httpURL+"/", "h.example"); code != 200 || body != "fast" {
			t.Errorf("slow and fast upstream, GET %d: %d %q, want 200 fast", i, code, body)
		}
	}
}

func TestClientBodyTimeout(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	cfg.ClientBodyTimeout = 300 * time.Millisecond
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	c, err := net.Dial("tcp", tp.httpURL[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h.example\r\nContent-Length: 10\r\n\r\n01234")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("body stalled past client-body-timeout: %d, want 408", resp.StatusCode)
	}
}

// TestUpstreamKeepaliveRequestsHoldsUnderRaces checks the per-connection
// request bound with concurrent clients and a backend that closes a
// quarter of reused connections as requests arrive (so requests are
// resent on other connections).
func TestUpstreamKeepaliveRequestsHoldsUnderRaces(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]int{}
	be := startBackendOn(t, "be", 0, func(l net.Listener) net.Listener { return newRaceListener(l, 0.25) }, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr]++
		mu.Unlock()
		io.WriteString(w, "be")
	})
	cfg := defaults()
	cfg.UpstreamKeepaliveRequests = 3
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	var wg sync.WaitGroup
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				method := []string{"GET", "PUT"}[i%2]
				req, _ := http.NewRequest(method, tp.httpURL+"/", strings.NewReader("x"))
				req.Host = "h.example"
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("%s: %s", method, resp.Status)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for addr, n := range conns {
		if n > 3 {
			t.Errorf("upstream connection %s carried %d requests, more than upstream-keepalive-requests 3", addr, n)
		}
	}
}
