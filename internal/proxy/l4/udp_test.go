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

// TestUDPSessionCap shows that per-client state is bounded: with room for
// two sessions, a third client ends the session of the client heard from
// longest ago, and that client's next datagram starts a new session.
func TestUDPSessionCap(t *testing.T) {
	u0 := udpBackend(t, "u0")
	p := newProxy(t, Options{UDPMaxSessions: 2})
	mustSet(t, p, udpService("s", "lc", u0))
	addr := addrOf(t, p, "s")
	c1, c2, c3 := newUDPClient(t, addr), newUDPClient(t, addr), newUDPClient(t, addr)
	for _, c := range []*udpClient{c1, c2, c1} { // c2 is now the least recent
		if got := c.ask("x"); got != "u0:x" {
			t.Fatalf("got %q", got)
		}
	}
	if n := activeOn(p, "s", u0.Addr); n != 2 {
		t.Fatalf("active sessions %d, want 2", n)
	}
	if got := c3.ask("y"); got != "u0:y" {
		t.Fatalf("third client got %q", got)
	}
	eventually(t, "c2's session ended", func() bool { return activeOn(p, "s", u0.Addr) == 2 })
	if st := p.Stats()[0]; st.UDPEvicted != 1 {
		t.Fatalf("evicted %d, want 1", st.UDPEvicted)
	}
	// c1 kept its session (3 sessions so far); c2 gets a new one, evicting c1.
	if got := c1.ask("z"); got != "u0:z" {
		t.Fatalf("c1 got %q", got)
	}
	if e, _ := endpointStats(p, "s", u0.Addr); e.Total != 3 {
		t.Fatalf("sessions %d, want 3: c1 must have kept its session", e.Total)
	}
	if got := c2.ask("w"); got != "u0:w" {
		t.Fatalf("c2 got %q", got)
	}
	eventually(t, "two sessions", func() bool { return activeOn(p, "s", u0.Addr) == 2 })
	st := p.Stats()[0]
	if st.UDPEvicted != 2 || st.Endpoints[0].Total != 4 {
		t.Fatalf("evicted %d, sessions %d; want 2 and 4", st.UDPEvicted, st.Endpoints[0].Total)
	}
}

// TestUDPManyClientsBounded sends from more client addresses than the cap
// and checks that sessions (and so goroutines and sockets) stay at the cap.
func TestUDPManyClientsBounded(t *testing.T) {
	u0 := udpBackend(t, "u0")
	const max = 8
	p := newProxy(t, Options{UDPMaxSessions: max})
	mustSet(t, p, udpService("s", "lc", u0))
	addr := addrOf(t, p, "s")
	for i := range 5 * max {
		if got := newUDPClient(t, addr).ask("m"); got != "u0:m" {
			t.Fatalf("client %d got %q", i, got)
		}
		if n := activeOn(p, "s", u0.Addr); n > max {
			t.Fatalf("after %d clients: %d sessions, cap %d", i+1, n, max)
		}
	}
	if st := p.Stats()[0]; st.UDPEvicted != 4*max {
		t.Fatalf("evicted %d, want %d", st.UDPEvicted, 4*max)
	}
}

// TestUDPPortUnreachableEndsSession: an endpoint answering with ICMP port
// unreachable ends the session at once (the relay sees the error while it
// waits for a reply without a buffer).
func TestUDPPortUnreachableEndsSession(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := sched.Endpoint{Addr: addrPortOf(pc.LocalAddr()), Weight: 1}
	pc.Close()
	p := newProxy(t, Options{})
	mustSet(t, p, udpService("s", "lc", dead))
	c := newUDPClient(t, addrOf(t, p, "s"))
	if _, err := c.conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a session opened", func() bool { e, _ := endpointStats(p, "s", dead.Addr); return e.Total == 1 })
	eventually(t, "the session ended", func() bool { return activeOn(p, "s", dead.Addr) == 0 })
}
