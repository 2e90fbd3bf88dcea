package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two speakers on loopback addresses (127.1.79.1 and .2, one port), peering with each
// other: paths flow both ways, status reports the sessions, a withdrawn prefix leaves
// the other side.
func TestSpeakersPeer(t *testing.T) {
	a1, a2 := netip.MustParseAddr("127.1.79.1"), netip.MustParseAddr("127.1.79.2")
	const port = 11179
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := func(self, other netip.Addr, as, otherAS uint32, adv ...string) Config {
		c := Config{RouterID: self, AS: as, ListenPort: port, HoldTime: DefaultHoldTime,
			Peers: []Peer{{Name: "node other", Addr: other, Port: port, AS: otherAS, RestartTime: 120 * time.Second, Passive: self.Compare(other) > 0}}}
		for _, a := range adv {
			c.Advertise = append(c.Advertise, netip.MustParsePrefix(a))
		}
		return c
	}
	s1, s2 := NewSpeaker(log, 5*time.Second), NewSpeaker(log, 5*time.Second)
	defer s1.Stop()
	defer s2.Stop()
	if err := s1.Set(ctx, cfg(a1, a2, 65001, 65002, "10.244.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Set(ctx, cfg(a2, a1, 65002, 65001, "10.244.1.0/24", "10.96.0.0/16")); err != nil {
		t.Fatal(err)
	}
	learned := func(s *Speaker) string {
		l, err := s.Learned()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range l {
			out = append(out, p.String())
		}
		return strings.Join(out, ",")
	}
	waitFor(t, "s1 learns s2's prefixes", func() bool { return learned(s1) == "10.96.0.0/16 via 127.1.79.2,10.244.1.0/24 via 127.1.79.2" })
	waitFor(t, "s2 learns s1's prefix", func() bool { return learned(s2) == "10.244.0.0/24 via 127.1.79.1" })
	waitFor(t, "s1 synced (End-of-RIB received)", func() bool { return s1.Synced(ctx) })

	// The status socket serves what the speaker knows.
	sock := filepath.Join(t.TempDir(), SocketName)
	if err := Serve(ctx, sock, func(ctx context.Context) (Status, error) { return s1.Status(ctx, "n1") }, log); err != nil {
		t.Fatal(err)
	}
	st, err := Query(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 {
		t.Fatalf("status %+v", st)
	}
	p := st.Peers[0]
	if st.Node != "n1" || st.AS != 65001 || p.State != "Established" || p.AS != 65002 || p.Received != 2 || p.Advertised != 1 || p.Name != "node other" ||
		p.GracefulRestart != "peer restart 120s" || p.Since.IsZero() {
		t.Fatalf("status %+v", st)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v", fi.Mode(), err)
	}

	// Withdrawing a prefix removes it from the other side.
	if err := s2.Set(ctx, cfg(a2, a1, 65002, 65001, "10.244.1.0/24")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10.96.0.0/16 withdrawn", func() bool { return learned(s1) == "10.244.1.0/24 via 127.1.79.2" })
	// Removing the peer ends the session; its paths go.
	if err := s1.Set(ctx, Config{RouterID: a1, AS: 65001, ListenPort: port, HoldTime: DefaultHoldTime}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "paths of a removed peer gone", func() bool { return learned(s1) == "" })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}
