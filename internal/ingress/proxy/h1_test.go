package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend answers every request with the canned response for its
// path, written verbatim, and records what it received.
type rawBackend struct {
	l    net.Listener
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func startRawBackend(t *testing.T, answers map[string]string) *rawBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{l: l}
	t.Cleanup(func() { l.Close() })
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
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					b.mu.Lock()
					b.reqs = append(b.reqs, req)
					b.body = append(b.body, string(body))
					b.mu.Unlock()
					ans, ok := answers[req.URL.Path]
					if !ok {
						ans = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
					}
					io.WriteString(c, ans)
					if strings.HasPrefix(req.URL.Path, "/close") {
						return
					}
				}
			}()
		}
	}()
	return b
}

func (b *rawBackend) last() (*http.Request, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs[len(b.reqs)-1], b.body[len(b.body)-1]
}

func TestH1ResponseFraming(t *testing.T) {
	be := startRawBackend(t, map[string]string{
		"/chunked":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
		"/close":    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"/nobody":   "HTTP/1.1 204 No Content\r\n\r\n",
		"/interim":  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
		"/hop":      "HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nX-Public: 1\r\nContent-Length: 2\r\n\r\nok",
		"/head":     "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
		"/garbage/": "HTTP/9.9 what\r\n\r\n",
	})
	cfg := defaults()
	tp := startProxy(t, cfg)
	tp.swap(cfg, nil, nil)
	oneRoute(t, tp, cfg, &backend{l: be.l})
	hc := client(t)
	conns := 0
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req := mustRequest(t, method, tp.httpURL+path, "h.example")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				if !i.Reused {
					conns++
				}
			},
		}))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, path, err)
		}
		return resp, string(b)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/chunked", 200, "hello world"},
		{"GET", "/close", 200, "until the end"},
		{"GET", "/nobody", 204, ""},
		{"GET", "/interim", 200, "final"},
		{"HEAD", "/head", 200, ""},
		{"GET", "/garbage/", 502, "Bad Gateway\n"},
		{"GET", "/chunked", 200, "hello world"},
	} {
		resp, body := do(tc.method, tc.path)
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.method == "HEAD" && resp.ContentLength != 1234 {
			t.Errorf("HEAD: Content-Length %d, want the upstream's 1234", resp.ContentLength)
		}
	}
	resp, _ := do("GET", "/hop")
	if resp.Header.Get("X-Private") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Public") != "1" {
		t.Errorf("hop-by-hop response headers: %v", resp.Header)
	}
	// Every answer above could be framed for the client: one connection
	// (the 502 closes it: that is one more).
	if conns != 2 {
		t.Errorf("client connections: %d, want 2", conns)
	}
}

// rawExchange writes in to a new connection to the proxy and returns
// everything read until the proxy closes it.
func rawExchange(t *testing.T, addr, in string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, in)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestH1ClientSide(t *testing.T) {
	be := startRawBackend(t, nil)
	cfg := defaults()
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, &backend{l: be.l})
	addr := tp.httpURL[len("http://"):]

	// Pipelined requests, the last one closing.
	out := rawExchange(t, addr, "GET /a HTTP/1.1\r\nHost: h.example\r\n\r\nGET /b HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n")
	if strings.Count(out, "HTTP/1.1 200 OK") != 2 || !strings.Contains(out, "Connection: close") {
		t.Errorf("pipelined: %q", out)
	}
	// HTTP/1.0 without keep-alive: one answer, then the close.
	out = rawExchange(t, addr, "GET /a HTTP/1.0\r\nHost: h.example\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK") || !strings.HasSuffix(out, "ok") {
		t.Errorf("HTTP/1.0: %q", out)
	}
	// A chunked body with Expect: 100-continue is forwarded with its length;
	// hop-by-hop headers and those named by Connection are not.
	out = rawExchange(t, addr, "PUT /up HTTP/1.1\r\nHost: h.example\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n"+
		"Connection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nProxy-Authorization: p\r\nX-Kept: k\r\n\r\n"+
		"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") {
		t.Errorf("expect 100-continue: %q", out)
	}
	req, body := be.last()
	if body != "abcde" || req.ContentLength != 5 || req.Header.Get("X-Kept") != "k" ||
		req.Header.Get("X-Secret") != "" || req.Header.Get("Keep-Alive") != "" || req.Header.Get("Proxy-Authorization") != "" || req.Header.Get("Expect") != "" {
		t.Errorf("upstream got body %q length %d headers %v", body, req.ContentLength, req.Header)
	}
	// Absolute-form target: the path goes upstream, the URL's host routes.
	out = rawExchange(t, addr, "GET http://h.example/abs?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
	if req, _ := be.last(); !strings.HasPrefix(out, "HTTP/1.1 200") || req.RequestURI != "/abs?q=1" {
		t.Errorf("absolute form: %q, upstream URI %q", out, req.RequestURI)
	}
	// A 404 with an unread body closes the connection.
	out = rawExchange(t, addr, "POST / HTTP/1.1\r\nHost: nowhere\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: h.example\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 404") || !strings.Contains(out, "Connection: close") || strings.Count(out, "HTTP/1.1") != 1 {
		t.Errorf("404 with body: %q", out)
	}
	// Malformed requests get 400 and the close.
	out = rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: h.example\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Errorf("smuggling attempt: %q", out)
	}
}

// TestIdleUpstreamCloseIsSeenBeforeReuse: a pooled connection the
// upstream closed while idle is noticed when it is taken from the pool, so
// even a POST (which may not be resent once sent) succeeds.
func TestIdleUpstreamCloseIsSeenBeforeReuse(t *testing.T) {
	be := startBackend(t, "be", 30*time.Millisecond, nil)
	cfg := defaults()
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	for i := 0; i < 5; i++ {
		req := mustRequest(t, "POST", tp.httpURL+"/", "h.example")
		req.Body = io.NopCloser(strings.NewReader("x"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %d after the upstream closed the idle connection: %s", i, resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := tp.metric(t, "fjord_ingress_upstream_stale_connection_retries_total", nil); n != 0 {
		t.Errorf("%v stale-connection resends; the closed connections should have been dropped from the pool", n)
	}
}

// TestNetHTTPOnlyPath keeps the net/http reference path working.
func TestNetHTTPOnlyPath(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	tp := startProxyWith(t, cfg, Options{NetHTTPOnly: true})
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	for i := 0; i < 3; i++ {
		if code, body, _ := get(t, hc, tp.httpURL+"/", "h.example"); code != 200 || body != "be" {
			t.Fatalf("net/http path: %d %q", code, body)
		}
	}
	if code, _, _ := get(t, hc, tp.httpURL+"/", "nowhere"); code != 404 {
		t.Errorf("net/http path, unknown host: %d", code)
	}
	if !strings.Contains(tp.log.String(), "[upstream-ns-s-http]") {
		t.Errorf("access log: %q", tp.log.String())
	}
}

// TestHTTPS1OnTheHandWrittenPath: a TLS client that offers only
// http/1.1 is served by the hand-written path, with X-Forwarded-Proto
// https and keep-alive.
func TestHTTPS1OnTheHandWrittenPath(t *testing.T) {
	tp, be := tlsSetup(t)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "a.example", NextProtos: []string{"http/1.1"}},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	conns := 0
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", "https://"+tp.httpsAddr+"/x", nil)
		req.Host = "a.example"
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				if !i.Reused {
					conns++
				}
			},
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 1 || resp.StatusCode != 200 || string(body) != "be" {
			t.Fatalf("https/1.1: %s %d %q", resp.Proto, resp.StatusCode, body)
		}
	}
	if conns != 1 {
		t.Errorf("3 requests used %d TLS connections, want 1", conns)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if p := be.last.Header.Get("X-Forwarded-Proto"); p != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", p)
	}
}

// TestShutdownFinishesActiveAndClosesIdle: Shutdown lets a request in
// flight finish and closes idle keep-alive connections.
func TestShutdownFinishesActiveAndClosesIdle(t *testing.T) {
	be := startBackend(t, "slow", 0, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	cfg := defaults()
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	addr := tp.httpURL[len("http://"):]
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("idle connection's first answer: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	done := make(chan string, 1)
	go func() {
		code, body, _ := get(t, client(t), tp.httpURL+"/", "h.example")
		done <- fmt.Sprint(code, " ", body)
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.http.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if got := <-done; got != "200 slow" {
		t.Errorf("request in flight during Shutdown: %s", got)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("idle connection still open after Shutdown")
	}
}

// TestH1LargeBodies: bodies beyond what is buffered for resending stream
// through in both directions, with a known length or chunked.
func TestH1LargeBodies(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 3<<20/16) // 3 MiB
	be := startBackend(t, "be", 0, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			if r.URL.Path == "/chunked" {
				w.(http.Flusher).Flush() // no Content-Length: chunked
			}
			io.WriteString(w, big)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v", len(b), string(b) == big)
	})
	cfg := defaults()
	cfg.ProxyBodySize = 0 // unlimited
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	hc := client(t)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body)
		}
		req, _ := http.NewRequest("POST", tp.httpURL+"/", body)
		req.Host = "h.example"
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d true", len(big)); resp.StatusCode != 200 || string(got) != want {
			t.Errorf("POST of 3 MiB (chunked %v): %d %q, want %q", chunked, resp.StatusCode, got, want)
		}
	}
	for _, path := range []string{"/", "/chunked"} {
		code, got, _ := get(t, hc, tp.httpURL+path, "h.example")
		if code != 200 || got != big {
			t.Errorf("GET %s of 3 MiB: %d, %d bytes (equal %v)", path, code, len(got), got == big)
		}
	}
}

// TestKeepAliveTimeouts: keep-alive closes an idle client connection;
// upstream-keepalive-timeout retires an idle upstream connection, so the
// next request dials a new one.
func TestKeepAliveTimeouts(t *testing.T) {
	var mu sync.Mutex
	var remotes []string
	be := startBackend(t, "be", 0, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes = append(remotes, r.RemoteAddr)
		mu.Unlock()
		io.WriteString(w, "be")
	})
	cfg := defaults()
	cfg.KeepAlive = 200 * time.Millisecond
	cfg.UpstreamKeepaliveTimeout = 200 * time.Millisecond
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	addr := tp.httpURL[len("http://"):]

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	ask := func() {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h.example\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	ask()
	ask()                                       // within keep-alive: same client and upstream connections
	if _, err := br.ReadByte(); err != io.EOF { // a timeout here: not closed within 10 s
		t.Errorf("idle client connection: %v, want EOF from the proxy", err)
	}
	// The idle upstream connection is gone too by now: a new one is dialled.
	time.Sleep(300 * time.Millisecond)
	if code, _, _ := get(t, client(t), tp.httpURL+"/", "h.example"); code != 200 {
		t.Fatalf("request after the upstream keep-alive timeout: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 3 || remotes[0] != remotes[1] || remotes[2] == remotes[1] {
		t.Errorf("upstream connections per request: %v; want the first two shared and the third new", remotes)
	}
}

// TestH1SurvivesGarbage: malformed and truncated input on many
// connections leaves the proxy serving.
func TestH1SurvivesGarbage(t *testing.T) {
	be := startBackend(t, "be", 0, nil)
	cfg := defaults()
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	addr := tp.httpURL[len("http://"):]
	valid := "POST /x HTTP/1.1\r\nHost: h.example\r\nTransfer-Encoding: chunked\r\nConnection: Upgrade\r\nUpgrade: x\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		b := []byte(valid)
		for j := 0; j < 1+rng.IntN(8); j++ { // flip, cut or duplicate bytes
			switch k := rng.IntN(len(b)); rng.IntN(3) {
			case 0:
				b[k] = byte(rng.IntN(256))
			case 1:
				b = b[:k+1]
			default:
				b = append(b[:k:k], b[k/2:]...)
			}
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(b)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}
	if code, body, _ := get(t, client(t), tp.httpURL+"/", "h.example"); code != 200 || body != "be" {
		t.Fatalf("after garbage: %d %q", code, body)
	}
}

// loopbackPair returns both ends of a TCP connection over loopback, the server's
// wrapped as the frontend wraps it.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, newRawIO(server)
}

// waitPending waits (bounded) until the bytes the client sent have reached c.
func waitPending(t *testing.T, c net.Conn) {
	t.Helper()
	for i := 0; i < 500 && !inputPending(c); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !inputPending(c) {
		t.Fatal("the client's bytes never showed as pending")
	}
}

// TestInputPending: what Shutdown uses to tell a connection with a request on its way
// in from an idle one. It answers at once while the connection's own goroutine waits
// to read (it takes no read lock), and reads nothing.
func TestInputPending(t *testing.T) {
	client, server := loopbackPair(t)
	waiting := make(chan error, 1)
	go func() { waiting <- server.(*rawIO).waitReadable() }()
	time.Sleep(50 * time.Millisecond) // let it block in the poller
	checked := make(chan bool, 1)
	go func() { checked <- inputPending(server) }()
	select {
	case p := <-checked:
		if p {
			t.Fatal("pending before the client sent anything")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("inputPending blocked behind a goroutine waiting to read")
	}
	io.WriteString(client, "GET / HTTP/1.1\r\n")
	waitPending(t, server)
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := server.Read(buf); err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("read %q, %v after peeking: the peek consumed bytes", buf[:n], err)
	}
}

// TestRequestInFlightAtShutdownIsServed: a connection whose request has already
// arrived when Shutdown begins is served (then closed), not closed unanswered; one
// with nothing sent is closed.
func TestRequestInFlightAtShutdownIsServed(t *testing.T) {
	be := startBackend(t, "be", 0, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	cfg := defaults()
	tp := startProxy(t, cfg)
	oneRoute(t, tp, cfg, be)
	stopping := func() bool { return true }
	serve := func(server net.Conn) {
		var pools bufPools
		br, bw := pools.get(server)
		c := newH1conn(tp.p, server, br, bw, frontendParamsOf(cfg))
		c.bufs = &pools
		c.serve(stopping)
		c.nc.Close()
		c.releaseBuffers()
	}

	client, server := loopbackPair(t)
	io.WriteString(client, "GET / HTTP/1.1\r\nHost: h.example\r\n\r\n")
	waitPending(t, server)
	serve(server)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatalf("the request sent before shutdown got no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "served" {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}

	idle, server2 := loopbackPair(t)
	serve(server2)
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatalf("an idle connection got %d bytes at shutdown instead of being closed", n)
	}
}
