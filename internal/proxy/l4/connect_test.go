package l4

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// fakeDialer answers for the addresses in live and refuses the others,
// recording every address dialled.
type fakeDialer struct {
	mu     sync.Mutex
	live   map[string]bool
	dialed []string
}

func (d *fakeDialer) DialContext(_ context.Context, _, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dialed = append(d.dialed, address)
	if !d.live[address] {
		return nil, errors.New("refused")
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func TestConnectFailsOver(t *testing.T) {
	a, b, c := ep(1, 1), ep(2, 1), ep(3, 1)
	bal := newTestBalancer(t, "lc", a, b, c)
	// Load b and c so that the dead a stays the least loaded even after
	// a failed attempt counts against it: connect must still get past it.
	for range 6 {
		bal.pick(sched.Flow{})
	}
	bal.done(a)
	bal.done(a)
	if got := active(bal); got[a.Addr] != 0 || got[b.Addr] != 2 || got[c.Addr] != 2 {
		t.Fatalf("setup: active %v", got)
	}
	d := &fakeDialer{live: map[string]bool{c.Addr.String(): true}}
	conn, got, err := connect(context.Background(), bal, d, time.Second, "tcp", sched.Flow{})
	if err != nil {
		t.Fatalf("connect: %v (dialled %v)", err, d.dialed)
	}
	conn.Close()
	if got.Addr != c.Addr {
		t.Fatalf("connected to %v, want %v", got.Addr, c.Addr)
	}
	if want := []string{a.Addr.String(), b.Addr.String(), c.Addr.String()}; !slices.Equal(d.dialed, want) {
		t.Fatalf("dialled %v, want each endpoint once: %v", d.dialed, want)
	}
	// Only the successful pick stays counted.
	before := active(bal)
	bal.done(got)
	after := active(bal)
	if after[c.Addr] != before[c.Addr]-1 || after[a.Addr] != before[a.Addr] {
		t.Fatalf("counts before done %v, after %v", before, after)
	}
	st := ServiceStats{}
	bal.stats(&st)
	if st.Endpoints[0].DialFailures != 1 || st.Endpoints[1].DialFailures != 1 || st.Endpoints[2].Total != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConnectAllDead(t *testing.T) {
	for _, name := range []string{"lc", "wlc", "rr", "sh", "maglev"} {
		bal := newTestBalancer(t, name, ep(1, 1), ep(2, 2))
		d := &fakeDialer{}
		if _, _, err := connect(context.Background(), bal, d, time.Second, "tcp", sched.Flow{}); err == nil {
			t.Fatalf("%s: connect succeeded", name)
		}
		if len(d.dialed) > 2 {
			t.Errorf("%s: dialled %v, want each endpoint at most once", name, d.dialed)
		}
		for a, n := range active(bal) {
			if n != 0 {
				t.Errorf("%s: %v left with %d active", name, a, n)
			}
		}
	}
}

func TestConnectNoEndpoint(t *testing.T) {
	bal := newTestBalancer(t, "lc", ep(1, 0)) // quiesced only
	if _, _, err := connect(context.Background(), bal, &fakeDialer{}, time.Second, "tcp", sched.Flow{}); !errors.Is(err, errNoEndpoint) {
		t.Fatalf("err %v, want errNoEndpoint", err)
	}
	st := ServiceStats{}
	bal.stats(&st)
	if st.NoEndpoint != 1 {
		t.Fatalf("NoEndpoint %d", st.NoEndpoint)
	}
}
