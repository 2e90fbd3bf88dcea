package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// echoUpgrade is a backend handler that accepts an Upgrade and then
// echoes raw bytes (enough to prove the proxy passes upgraded traffic
// both ways; WebSocket framing is the endpoints' business).
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "want upgrade", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", "dummy")
	brw.Flush()
	io.Copy(conn, brw)
}

// dialUpgrade opens a raw connection through the proxy and upgrades it.
func dialUpgrade(t *testing.T, addr, host string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return conn, br
}

func echoOnce(t *testing.T, conn net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(conn, msg+"\n"); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got, err := br.ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

func TestWebSocketSurvivesSwaps(t *testing.T) {
	ws := startBackend(t, "ws", 0, echoUpgrade)
	other := startBackend(t, "other", 0, nil)
	tp := startProxy(t, defaults())
	ings := []*networkingv1.Ingress{ingress("ns", "ws", "nginx", map[string]string{"ws.example/": "ws:http"}, nil)}
	ups := map[UpstreamKey]Upstream{key("ns", "ws", "http"): {Endpoints: []netipAddrPort{ws.addr(t)}}}
	tp.swap(defaults(), ings, ups)

	conn, br := dialUpgrade(t, tp.httpURL[len("http://"):], "ws.example")
	defer conn.Close()
	echoOnce(t, conn, br, "before")
	// Swaps that change everything: routes, endpoints, upstream pool
	// settings, client keep-alive settings (a new server generation).
	for i := 0; i < 50; i++ {
		cfg := defaults()
		cfg.UpstreamKeepaliveConnections = 1 + i%3
		cfg.KeepAlive = time.Duration(10+i%2) * time.Second
		if i%2 == 0 {
			tp.swap(cfg, nil, nil)
		} else {
			tp.swap(cfg, []*networkingv1.Ingress{ingress("ns", "x", "nginx", map[string]string{"ws.example/": "other:http"}, nil)},
				map[UpstreamKey]Upstream{key("ns", "other", "http"): {Endpoints: []netipAddrPort{other.addr(t)}}})
		}
		tp.http.Apply(cfg)
		echoOnce(t, conn, br, fmt.Sprintf("during %d", i))
	}
	echoOnce(t, conn, br, "after")
}
