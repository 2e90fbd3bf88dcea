package latency

import (
	"bytes"
	"context"
	"image/png"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPacketRoundTrip(t *testing.T) {
	p := Packet{Reply: true, Seq: 7, T1: 100, T2: 250, T3: 260}
	got, err := Unmarshal(p.Marshal())
	if err != nil || got != p {
		t.Fatalf("%+v %v", got, err)
	}
	bad := p.Marshal()
	for _, mut := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:39] },
		func(b []byte) []byte { return append(b, 0) },
		func(b []byte) []byte { b[0] = 'X'; return b },
		func(b []byte) []byte { b[4] = 9; return b },
		func(b []byte) []byte { b[6] = 1; return b },
	} {
		if _, err := Unmarshal(mut(append([]byte(nil), bad...))); err == nil {
			t.Error("a malformed packet was accepted")
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(Packet{Seq: 1, T1: 2}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := Unmarshal(b); err == nil {
			if q, _ := Unmarshal(p.Marshal()); q != p {
				t.Fatal("not a round trip")
			}
		}
	})
}

func TestTiming(t *testing.T) {
	// Sent at 1000, the peer (clock 500 ahead) received at 1510 and answered at 1520,
	// back at 1030: 20 on the wire, offset +500.
	rtt, off := Timing(1000, 1510, 1520, 1030)
	if rtt != 20 || off != 500 {
		t.Fatalf("rtt %v offset %v", rtt, off)
	}
}

func TestSummarise(t *testing.T) {
	ms := time.Millisecond
	s := Summarise([]time.Duration{1 * ms, 3 * ms, -1, 2 * ms, -1, 10 * ms})
	if s.Sent != 6 || s.Received != 4 || s.Loss < 33.3 || s.Loss > 33.4 || s.Min != ms || s.Max != 10*ms || s.P50 != 2*ms || s.P99 != 10*ms {
		t.Fatalf("%+v", s)
	}
	// |3-1| + |2-3| + |10-2| = 11 over 3 steps.
	if s.Jitter != 11*ms/3 {
		t.Fatalf("jitter %v", s.Jitter)
	}
	if s := Summarise([]time.Duration{-1, -1}); s.Loss != 100 || s.Received != 0 {
		t.Fatalf("all lost: %+v", s)
	}
	sum := SumSamples([][]time.Duration{{ms, 2 * ms, ms}, {ms, -1, 3 * ms}})
	if len(sum) != 3 || sum[0] != 2*ms || sum[1] != -1 || sum[2] != 4*ms {
		t.Fatalf("chain sums %v", sum)
	}
}

// TestProberAgainstResponders runs a prober against two responders on loopback and
// a peer that does not answer; the metrics say so.
func TestProberAgainstResponders(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var peers []Peer
	for _, name := range []string{"n2", "n3"} {
		r, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go r.Serve(ctx)
		peers = append(peers, Peer{Name: name, Addr: r.Addr().(*net.UDPAddr).AddrPort()})
	}
	dead, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) // never answers
	defer dead.Close()
	peers = append(peers, Peer{Name: "n4", Addr: dead.LocalAddr().(*net.UDPAddr).AddrPort()})
	reg := prometheus.NewRegistry()
	p, err := NewProber(Config{Source: netip.MustParseAddr("127.0.0.1"), Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond,
		Peers: func() []Peer { return peers }}, reg)
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if testutil.ToFloat64(p.m.lost.WithLabelValues("n4")) >= 3 && testutil.ToFloat64(p.m.reachable.WithLabelValues("n2")) == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := testutil.ToFloat64(p.m.reachable.WithLabelValues("n2")); v != 1 {
		t.Fatalf("n2 reachable = %v", v)
	}
	if v := testutil.ToFloat64(p.m.reachable.WithLabelValues("n4")); v != 0 {
		t.Fatalf("n4 reachable = %v", v)
	}
	if v := testutil.ToFloat64(p.m.lost.WithLabelValues("n2")); v != 0 {
		t.Fatalf("n2 lost %v probes on loopback", v)
	}
	out, err := testutil.GatherAndCount(reg, "fjord_node_rtt_seconds")
	if err != nil || out < 2 {
		t.Fatalf("rtt series: %d %v", out, err)
	}
	// The responder ignores what is not a probe (and replies are never answered).
	conn, _ := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(peers[0].Addr))
	defer conn.Close()
	conn.Write([]byte("hello"))
	conn.Write(Packet{Reply: true}.Marshal())
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 64)); err == nil {
		t.Fatalf("the responder answered garbage (%d bytes)", n)
	}
	// Exchange (doctor's clock check) against the same responder.
	uc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer uc.Close()
	rtt, off, err := Exchange(uc, peers[0].Addr, time.Second)
	if err != nil || rtt < 0 || off > 50*time.Millisecond || off < -50*time.Millisecond {
		t.Fatalf("exchange: rtt %v offset %v err %v (one clock: offset must be about 0)", rtt, off, err)
	}
}

func TestHeatmapIsAPNG(t *testing.T) {
	var b bytes.Buffer
	cells := []Cell{{From: "n1", To: "n2", Stats: Summarise([]time.Duration{time.Millisecond})}, {From: "n2", To: "n1", Stats: Summarise([]time.Duration{-1})}}
	if err := Heatmap(&b, "test", []Panel{{Title: "nodes", Names: []string{"n1", "n2"}, Cells: cells}}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("%v %v", img, err)
	}
	if !strings.HasPrefix(ms(1500*time.Microsecond), "1.500") {
		t.Fatal(ms(1500 * time.Microsecond))
	}
}

func TestOverlayCosts(t *testing.T) {
	ms := time.Millisecond
	nodes := []Cell{{From: "n1", To: "n2", Stats: Summarise([]time.Duration{ms})}, {From: "n1", To: "n3", Stats: Summarise([]time.Duration{ms})}}
	pods := []Cell{{From: "default/a", To: "default/b", Stats: Summarise([]time.Duration{3 * ms})}}
	oc := OverlayCosts(nodes, pods, map[string]string{"default/a": "n1", "default/b": "n2"})
	if len(oc) != 2 || oc[0].Added != 2*ms || oc[1].Unavailable == "" {
		t.Fatalf("%+v", oc)
	}
}
