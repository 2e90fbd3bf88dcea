package l4

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// wait bounds every blocking step of the loopback tests. It is a safety
// net against hangs, not an assertion about speed.
const wait = 10 * time.Second

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// tcpBackend listens on 127.0.0.1; each connection gets name and a newline,
// then an echo of what it sends until it half-closes.
func tcpBackend(t *testing.T, name string) sched.Endpoint {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, name+"\n")
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return sched.Endpoint{Addr: addrPortOf(ln.Addr()), Weight: 1}
}

// deadEndpoint returns a loopback address nothing listens on.
func deadEndpoint(t *testing.T) sched.Endpoint {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := addrPortOf(ln.Addr())
	ln.Close()
	return sched.Endpoint{Addr: a, Weight: 1}
}

// udpBackend answers each datagram with name, a colon and the datagram.
func udpBackend(t *testing.T, name string) sched.Endpoint {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	return sched.Endpoint{Addr: addrPortOf(pc.LocalAddr()), Weight: 1}
}

// newProxy returns a proxy closed when the test ends.
func newProxy(t *testing.T, opts Options) *Proxy {
	t.Helper()
	p := New(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

func mustSet(t *testing.T, p *Proxy, svcs ...Service) {
	t.Helper()
	if err := p.Set(svcs); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

func addrOf(t *testing.T, p *Proxy, key string) string {
	t.Helper()
	a, ok := p.Addr(key)
	if !ok {
		t.Fatalf("service %q not listening", key)
	}
	return a.String()
}

// client is one TCP connection through the proxy.
type client struct {
	t       *testing.T
	conn    *net.TCPConn
	r       *bufio.Reader
	backend string
}

// dial connects through the proxy and reads the backend's name.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	cl := &client{t: t, conn: c.(*net.TCPConn), r: bufio.NewReader(c)}
	name, err := cl.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading backend name: %v", err)
	}
	cl.backend = strings.TrimSuffix(name, "\n")
	return cl
}

// echo checks that msg comes back.
func (c *client) echo(msg string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, msg+"\n"); err != nil {
		c.t.Fatalf("write to %s: %v", c.backend, err)
	}
	got, err := c.r.ReadString('\n')
	if err != nil || got != msg+"\n" {
		c.t.Fatalf("echo via %s: %q, %v", c.backend, got, err)
	}
}

// expectClosed checks that the proxy ends a connection without sending
// anything, with a FIN or an RST, and does not leave it hanging.
func expectClosed(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, wait)
	if errors.Is(err, syscall.ECONNRESET) {
		return // on loopback the reset can beat connect(2) returning
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from proxy: %d bytes, %v; want an immediate close", n, err)
	}
}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// endpointStats returns the stats of endpoint a of service key.
func endpointStats(p *Proxy, key string, a netip.AddrPort) (EndpointStats, bool) {
	for _, s := range p.Stats() {
		if s.Key != key {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Addr == a {
				return e, true
			}
		}
	}
	return EndpointStats{}, false
}

func activeOn(p *Proxy, key string, a netip.AddrPort) int {
	e, _ := endpointStats(p, key, a)
	return e.Active
}
