package l4

import (
	"io"
	"testing"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

func tcpService(key, scheduler string, eps ...sched.Endpoint) Service {
	return Service{Key: key, Protocol: TCP, ListenAddr: loopback, Scheduler: scheduler, Endpoints: eps}
}

func TestTCPLeastConnection(t *testing.T) {
	b0, b1, b2 := tcpBackend(t, "b0"), tcpBackend(t, "b1"), tcpBackend(t, "b2")
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "lc", b0, b1, b2))
	addr := addrOf(t, p, "s")

	// One connection each, then a fourth: ties go to the first endpoint,
	// so b0 holds two.
	var cs []*client
	for _, want := range []string{"b0", "b1", "b2", "b0"} {
		c := dial(t, addr)
		if c.backend != want {
			t.Fatalf("connection %d went to %s, want %s", len(cs), c.backend, want)
		}
		c.echo("hello")
		cs = append(cs, c)
	}
	// Close the connections on b1 and b2: they become the least loaded
	// and the next two connections go there, not to b0.
	cs[1].conn.Close()
	cs[2].conn.Close()
	eventually(t, "b1 and b2 idle", func() bool {
		return activeOn(p, "s", b1.Addr) == 0 && activeOn(p, "s", b2.Addr) == 0
	})
	for _, want := range []string{"b1", "b2"} {
		if c := dial(t, addr); c.backend != want {
			t.Fatalf("after closing, new connection went to %s, want %s", c.backend, want)
		}
	}
	if n := activeOn(p, "s", b0.Addr); n != 2 {
		t.Fatalf("b0 active %d, want 2", n)
	}
	// The connections held on b0 still work.
	cs[0].echo("still")
	cs[3].echo("there")
}

func TestTCPHalfClose(t *testing.T) {
	b0 := tcpBackend(t, "b0")
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "lc", b0))
	c := dial(t, addrOf(t, p, "s"))
	io.WriteString(c.conn, "request")
	if err := c.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The backend sees EOF only if the proxy passed the FIN on; then it
	// finishes its echo and closes, which must reach us as EOF.
	got, err := io.ReadAll(c.r)
	if err != nil || string(got) != "request" {
		t.Fatalf("after half-close read %q, %v", got, err)
	}
	eventually(t, "connection released", func() bool { return activeOn(p, "s", b0.Addr) == 0 })
}

func TestTCPSetRemoveEndpointKeepsConnections(t *testing.T) {
	b0, b1 := tcpBackend(t, "b0"), tcpBackend(t, "b1")
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "lc", b0, b1))
	addr := addrOf(t, p, "s")
	old := dial(t, addr)
	if old.backend != "b0" {
		t.Fatalf("first connection went to %s", old.backend)
	}

	mustSet(t, p, tcpService("s", "lc", b1))
	if got := addrOf(t, p, "s"); got != addr {
		t.Fatalf("listener moved from %s to %s", addr, got)
	}
	old.echo("survives")
	for range 3 {
		if c := dial(t, addr); c.backend != "b1" {
			t.Fatalf("new connection went to removed endpoint %s", c.backend)
		}
	}
	e, ok := endpointStats(p, "s", b0.Addr)
	if !ok || !e.Removed || e.Active != 1 {
		t.Fatalf("removed endpoint stats %+v (found %v), want draining with 1 active", e, ok)
	}
	old.echo("again")
	old.conn.Close()
	eventually(t, "removed endpoint forgotten", func() bool {
		_, ok := endpointStats(p, "s", b0.Addr)
		return !ok
	})
}

func TestTCPSetAddEndpointCarriesCounts(t *testing.T) {
	b0, b1 := tcpBackend(t, "b0"), tcpBackend(t, "b1")
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "lc", b0))
	addr := addrOf(t, p, "s")
	held := []*client{dial(t, addr), dial(t, addr)}

	mustSet(t, p, tcpService("s", "lc", b0, b1))
	// b0 carries its two connections into the new scheduler, so the new
	// endpoint takes the next two.
	for i := range 2 {
		if c := dial(t, addr); c.backend != "b1" {
			t.Fatalf("connection %d after adding b1 went to %s", i, c.backend)
		}
	}
	for _, c := range held {
		c.echo("kept")
	}
	if n := activeOn(p, "s", b0.Addr); n != 2 {
		t.Fatalf("b0 active %d, want 2", n)
	}
}

func TestTCPDialFailover(t *testing.T) {
	dead, b1 := deadEndpoint(t), tcpBackend(t, "b1")
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "lc", dead, b1))
	addr := addrOf(t, p, "s")
	for range 2 {
		c := dial(t, addr)
		if c.backend != "b1" {
			t.Fatalf("went to %s", c.backend)
		}
		c.echo("ok")
	}
	e, _ := endpointStats(p, "s", dead.Addr)
	if e.DialFailures == 0 || e.Total != 0 {
		t.Fatalf("dead endpoint stats %+v", e)
	}
	eventually(t, "failed picks released", func() bool { return activeOn(p, "s", dead.Addr) == 0 })
}

func TestTCPNoEndpoint(t *testing.T) {
	p := newProxy(t, Options{})
	mustSet(t, p,
		tcpService("empty", "lc"),
		tcpService("dead", "wlc", deadEndpoint(t), deadEndpoint(t)),
		tcpService("quiesced", "lc", sched.Endpoint{Addr: tcpBackend(t, "b0").Addr, Weight: 0}),
	)
	for _, key := range []string{"empty", "dead", "quiesced"} {
		expectClosed(t, addrOf(t, p, key))
	}
	eventually(t, "failures counted", func() bool {
		for _, s := range p.Stats() {
			if s.NoEndpoint != 1 {
				return false
			}
		}
		return true
	})
}

func TestTCPWeightedLeastConnection(t *testing.T) {
	heavy, light := tcpBackend(t, "heavy"), tcpBackend(t, "light")
	heavy.Weight = 3
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "wlc", heavy, light))
	addr := addrOf(t, p, "s")
	n := map[string]int{}
	for range 8 {
		n[dial(t, addr).backend]++
	}
	if n["heavy"] != 6 || n["light"] != 2 {
		t.Fatalf("8 held connections split %v, want heavy 6 light 2", n)
	}
}

func TestSetIdempotent(t *testing.T) {
	b0 := tcpBackend(t, "b0")
	p := newProxy(t, Options{})
	svc := tcpService("s", "lc", b0)
	mustSet(t, p, svc)
	addr := addrOf(t, p, "s")
	c := dial(t, addr)
	for range 3 {
		mustSet(t, p, svc)
	}
	if got := addrOf(t, p, "s"); got != addr {
		t.Fatalf("listener moved from %s to %s", addr, got)
	}
	c.echo("same")
	e, _ := endpointStats(p, "s", b0.Addr)
	if e.Active != 1 || e.Total != 1 {
		t.Fatalf("stats %+v after repeated Set", e)
	}
}

func TestSetRejectsInvalidAndChangesNothing(t *testing.T) {
	b0 := tcpBackend(t, "b0")
	p := newProxy(t, Options{})
	mustSet(t, p, tcpService("s", "lc", b0))
	addr := addrOf(t, p, "s")
	for name, svcs := range map[string][]Service{
		"bad scheduler": {tcpService("s", "dh", b0)},
		"bad protocol":  {{Key: "s", Protocol: "SCTP", ListenAddr: loopback}},
		"duplicate key": {tcpService("s", "lc", b0), tcpService("s", "lc", b0)},
		"empty key":     {tcpService("", "lc", b0)},
		"negative":      {tcpService("s", "lc", sched.Endpoint{Addr: b0.Addr, Weight: -1})},
	} {
		if err := p.Set(svcs); err == nil {
			t.Errorf("%s: Set accepted %+v", name, svcs)
		}
	}
	if got := addrOf(t, p, "s"); got != addr {
		t.Fatalf("rejected Set moved the listener")
	}
	dial(t, addr).echo("unchanged")
}

func TestSetRemoveServiceAndClose(t *testing.T) {
	b0 := tcpBackend(t, "b0")
	p := New(Options{})
	mustSet(t, p, tcpService("a", "lc", b0), tcpService("b", "lc", b0))
	ca := dial(t, addrOf(t, p, "a"))
	cb := dial(t, addrOf(t, p, "b"))
	mustSet(t, p, tcpService("b", "lc", b0))
	if _, ok := p.Addr("a"); ok {
		t.Fatal("removed service still listening")
	}
	// Like kernel conntrack, a removed service's established connections
	// live on until Close.
	ca.echo("orphan")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{ca, cb} {
		if _, err := c.r.ReadByte(); err == nil {
			t.Fatal("connection open after Close")
		}
	}
	if err := p.Set(nil); err != ErrClosed {
		t.Fatalf("Set after Close: %v", err)
	}
}
