package l4

import (
	"net"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

func udpService(key, scheduler string, eps ...sched.Endpoint) Service {
	return Service{Key: key, Protocol: UDP, ListenAddr: loopback, Scheduler: scheduler, Endpoints: eps}
}

// udpClient is one client socket talking to the proxy.
type udpClient struct {
	t    *testing.T
	conn net.Conn
}

func newUDPClient(t *testing.T, addr string) *udpClient {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c}
}

// ask sends msg and returns the reply.
func (c *udpClient) ask(msg string) string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(wait))
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("no reply to %q: %v", msg, err)
	}
	return string(buf[:n])
}

func TestUDPSessions(t *testing.T) {
	u0, u1 := udpBackend(t, "u0"), udpBackend(t, "u1")
	p := newProxy(t, Options{})
	mustSet(t, p, udpService("s", "lc", u0, u1))
	addr := addrOf(t, p, "s")

	c1, c2 := newUDPClient(t, addr), newUDPClient(t, addr)
	if got := c1.ask("a"); got != "u0:a" {
		t.Fatalf("c1 got %q", got)
	}
	if got := c2.ask("b"); got != "u1:b" {
		t.Fatalf("c2 got %q, want the less loaded u1", got)
	}
	if got := c1.ask("a2"); got != "u0:a2" {
		t.Fatalf("c1 left its session: %q", got)
	}

	// Removing u0 drops c1's session at once; its next datagram goes to u1.
	mustSet(t, p, udpService("s", "lc", u1))
	if got := c1.ask("a3"); got != "u1:a3" {
		t.Fatalf("after removing u0, c1 got %q", got)
	}
	if got := c2.ask("b2"); got != "u1:b2" {
		t.Fatalf("c2 got %q", got)
	}
	eventually(t, "u0 forgotten", func() bool {
		_, ok := endpointStats(p, "s", u0.Addr)
		return !ok
	})
	if n := activeOn(p, "s", u1.Addr); n != 2 {
		t.Fatalf("u1 active sessions %d, want 2", n)
	}
}

func TestUDPIdleTimeout(t *testing.T) {
	u0 := udpBackend(t, "u0")
	p := newProxy(t, Options{UDPIdleTimeout: 20 * time.Millisecond})
	mustSet(t, p, udpService("s", "lc", u0))
	c := newUDPClient(t, addrOf(t, p, "s"))
	if got := c.ask("x"); got != "u0:x" {
		t.Fatalf("got %q", got)
	}
	eventually(t, "session expired", func() bool { return activeOn(p, "s", u0.Addr) == 0 })
	// A new datagram opens a new session.
	if got := c.ask("y"); got != "u0:y" {
		t.Fatalf("got %q", got)
	}
	if e, _ := endpointStats(p, "s", u0.Addr); e.Total != 2 {
		t.Fatalf("sessions %d, want 2", e.Total)
	}
}

func TestUDPNoEndpointDrops(t *testing.T) {
	p := newProxy(t, Options{})
	mustSet(t, p, udpService("s", "lc"))
	c := newUDPClient(t, addrOf(t, p, "s"))
	if _, err := c.conn.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drop counted", func() bool { return p.Stats()[0].NoEndpoint == 1 })
}
