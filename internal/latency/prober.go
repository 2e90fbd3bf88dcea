package latency

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Peer is a node to probe.
type Peer struct {
	Name string
	Addr netip.AddrPort // its responder
}

// Config tunes a Prober.
type Config struct {
	// Source is the local address probes leave from (the node's own); invalid = any.
	Source netip.Addr
	// Interval between rounds (default 2s) and Timeout for each answer (default 1s,
	// at most Interval).
	Interval, Timeout time.Duration
	// Peers returns the current peers; it is called every round.
	Peers func() []Peer
}

// Prober probes every peer once per round and records what it saw.
type Prober struct {
	cfg  Config
	conn *net.UDPConn
	m    *metrics
	now  func() time.Time

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]pending
}

type pending struct {
	peer string
	sent time.Time
}

// metrics are the Prober's Prometheus series, labelled by peer.
type metrics struct {
	rtt       *prometheus.HistogramVec
	sent      *prometheus.CounterVec
	lost      *prometheus.CounterVec
	reachable *prometheus.GaugeVec
	offset    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fjord_node_rtt_seconds",
			Help:    "Round-trip time of UDP probes from this node to a peer node's agent (responder time excluded).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}}, []string{"peer"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_node_probes_total",
			Help: "Probes sent to a peer node."}, []string{"peer"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_node_probes_lost_total",
			Help: "Probes to a peer node that got no answer within the timeout."}, []string{"peer"}),
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fjord_node_peer_reachable",
			Help: "1 if the peer node answered the last probe, else 0."}, []string{"peer"}),
		offset: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fjord_node_clock_offset_seconds",
			Help: "The peer node's clock minus this node's, estimated from the probe's timestamps."}, []string{"peer"}),
	}
	for _, c := range []prometheus.Collector{m.rtt, m.sent, m.lost, m.reachable, m.offset} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// NewProber opens the probing socket and registers the metrics on reg.
func NewProber(cfg Config, reg prometheus.Registerer) (*Prober, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Timeout <= 0 || cfg.Timeout > cfg.Interval {
		cfg.Timeout = min(time.Second, cfg.Interval)
	}
	if cfg.Peers == nil {
		return nil, errors.New("latency: Peers is required")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	laddr := &net.UDPAddr{}
	if cfg.Source.IsValid() {
		laddr.IP = cfg.Source.AsSlice()
	}
	c, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	return &Prober{cfg: cfg, conn: c, m: m, now: time.Now, pending: map[uint64]pending{}}, nil
}

// Run probes until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	go func() { <-ctx.Done(); p.conn.Close() }()
	go p.read(ctx)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.round()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round expires unanswered probes and sends one to every peer.
func (p *Prober) round() {
	now := p.now()
	p.mu.Lock()
	for seq, pd := range p.pending {
		if now.Sub(pd.sent) >= p.cfg.Timeout {
			p.m.lost.WithLabelValues(pd.peer).Inc()
			p.m.reachable.WithLabelValues(pd.peer).Set(0)
			delete(p.pending, seq)
		}
	}
	p.mu.Unlock()
	for _, peer := range p.cfg.Peers() {
		p.mu.Lock()
		p.seq++
		seq := p.seq
		sent := p.now()
		p.pending[seq] = pending{peer: peer.Name, sent: sent}
		p.mu.Unlock()
		p.m.sent.WithLabelValues(peer.Name).Inc()
		pkt := Packet{Seq: seq, T1: sent.UnixNano()}
		if _, err := p.conn.WriteToUDPAddrPort(pkt.Marshal(), peer.Addr); err != nil {
			// Counted as lost when it times out.
			continue
		}
	}
}

func (p *Prober) read(ctx context.Context) {
	buf := make([]byte, 512)
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		t4 := p.now()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pkt, err := Unmarshal(buf[:n])
		if err != nil || !pkt.Reply {
			continue
		}
		p.mu.Lock()
		pd, ok := p.pending[pkt.Seq]
		if ok {
			delete(p.pending, pkt.Seq)
		}
		p.mu.Unlock()
		if !ok || pkt.T1 != pd.sent.UnixNano() || t4.Sub(pd.sent) > p.cfg.Timeout {
			continue // late, duplicated or forged: the round counts it lost
		}
		rtt, off := Timing(pkt.T1, pkt.T2, pkt.T3, t4.UnixNano())
		if rtt < 0 {
			rtt = 0
		}
		p.m.rtt.WithLabelValues(pd.peer).Observe(rtt.Seconds())
		p.m.reachable.WithLabelValues(pd.peer).Set(1)
		p.m.offset.WithLabelValues(pd.peer).Set(off.Seconds())
	}
}

// Exchange sends one probe over conn to addr and returns the round trip and the
// responder's clock offset (doctor's clock-skew check).
func Exchange(conn *net.UDPConn, addr netip.AddrPort, timeout time.Duration) (rtt, offset time.Duration, err error) {
	seq := uint64(time.Now().UnixNano())
	t1 := time.Now().UnixNano()
	if _, err := conn.WriteToUDPAddrPort(Packet{Seq: seq, T1: t1}.Marshal(), addr); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 512)
	deadline := time.Now().Add(timeout)
	for {
		_ = conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		t4 := time.Now().UnixNano()
		if err != nil {
			return 0, 0, err
		}
		p, err := Unmarshal(buf[:n])
		if err != nil || !p.Reply || p.Seq != seq || p.T1 != t1 {
			continue
		}
		rtt, offset = Timing(p.T1, p.T2, p.T3, t4)
		return rtt, offset, nil
	}
}
