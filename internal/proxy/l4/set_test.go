package l4

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// freePort returns a loopback address with a port free for protocol.
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return addrPortOf(ln.Addr())
}

func TestSetMovesListenerKeepingCounts(t *testing.T) {
	b0, b1 := tcpBackend(t, "b0"), tcpBackend(t, "b1")
	p := newProxy(t, Options{})
	svc := tcpService("s", "lc", b0, b1)
	mustSet(t, p, svc)
	held := dial(t, addrOf(t, p, "s")) // on b0

	svc.ListenAddr = freePort(t)
	mustSet(t, p, svc)
	if got := addrOf(t, p, "s"); got != svc.ListenAddr.String() {
		t.Fatalf("listening on %s, want %s", got, svc.ListenAddr)
	}
	held.echo("kept")
	if c := dial(t, svc.ListenAddr.String()); c.backend != "b1" {
		t.Fatalf("new connection went to %s; b0's count was lost", c.backend)
	}
}

// TestSetAnyStateToAny makes every transition between a few
// configurations, in random order, checking after each that every service
// answers through its endpoints.
func TestSetAnyStateToAny(t *testing.T) {
	bs := []sched.Endpoint{tcpBackend(t, "b0"), tcpBackend(t, "b1"), tcpBackend(t, "b2")}
	u := udpBackend(t, "u0")
	ports := []netip.AddrPort{freePort(t), freePort(t)}
	states := [][]Service{
		nil,
		{tcpService("a", "lc", bs[0])},
		{tcpService("a", "wlc", bs[1], bs[2]), udpService("u", "lc", u)},
		{tcpService("b", "rr", bs...), tcpService("a", "lc")},
		{{Key: "a", Protocol: TCP, ListenAddr: ports[0], Scheduler: "lc", Endpoints: bs[:1]},
			{Key: "b", Protocol: TCP, ListenAddr: ports[1], Scheduler: "lc", Endpoints: bs[1:2]}},
		// The two services swap ports in one Set.
		{{Key: "a", Protocol: TCP, ListenAddr: ports[1], Scheduler: "lc", Endpoints: bs[:1]},
			{Key: "b", Protocol: TCP, ListenAddr: ports[0], Scheduler: "lc", Endpoints: bs[1:2]}},
	}
	p := newProxy(t, Options{})
	r := rand.New(rand.NewPCG(7, 7))
	var walk []int
	for i := range states {
		for j := range states {
			walk = append(walk, i, j)
		}
	}
	for k := len(walk)/2 - 1; k > 0; k-- { // shuffle the pairs
		m := r.IntN(k + 1)
		walk[2*k], walk[2*k+1], walk[2*m], walk[2*m+1] = walk[2*m], walk[2*m+1], walk[2*k], walk[2*k+1]
	}
	for step, i := range walk {
		mustSet(t, p, states[i]...)
		if got := len(p.Stats()); got != len(states[i]) {
			t.Fatalf("step %d state %d: %d services running", step, i, got)
		}
		for _, s := range states[i] {
			addr := addrOf(t, p, s.Key)
			switch {
			case s.Protocol == UDP:
				if got := newUDPClient(t, addr).ask("x"); got != "u0:x" {
					t.Fatalf("step %d state %d: %s answered %q", step, i, s.Key, got)
				}
			case len(s.Endpoints) == 0:
				expectClosed(t, addr)
			default:
				c := dial(t, addr)
				c.echo("x")
				c.conn.Close()
			}
		}
	}
}
