package latency

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/probe"
)

// Endpoint is one row or column of a matrix: a node or a pod.
type Endpoint struct {
	Name  string     `json:"name"` // node name, or pod "ns/name"
	Node  string     `json:"node"`
	Netns string     `json:"-"` // where its probes are sent from ("" = here)
	Addr  netip.Addr `json:"addr"`
}

// Cell is the round trips from one endpoint to another.
type Cell struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Stats Stats  `json:"stats"`
	Err   string `json:"error,omitempty"`
}

// MatrixConfig tunes a matrix run.
type MatrixConfig struct {
	Count    int           // probes per pair (default 20)
	Interval time.Duration // between a pair's probes (default 10ms)
	Timeout  time.Duration // for each answer (default 300ms)
}

func (c *MatrixConfig) defaults() {
	if c.Count <= 0 {
		c.Count = 20
	}
	if c.Interval <= 0 {
		c.Interval = 10 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 300 * time.Millisecond
	}
}

// Matrix pings from every endpoint that can send (its Netns is known or "") to every
// other with ICMP echoes, all pairs in parallel.
func Matrix(ctx context.Context, eps []Endpoint, cfg MatrixConfig) []Cell {
	cfg.defaults()
	var cells []Cell
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, from := range eps {
		for _, to := range eps {
			if from.Name == to.Name {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := Cell{From: from.Name, To: to.Name}
				samples, err := pingSeries(ctx, from.Netns, to.Addr, cfg)
				if err != nil {
					c.Err = err.Error()
				}
				c.Stats = Summarise(samples)
				mu.Lock()
				cells = append(cells, c)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	sort.Slice(cells, func(i, j int) bool {
		if cells[i].From != cells[j].From {
			return cells[i].From < cells[j].From
		}
		return cells[i].To < cells[j].To
	})
	return cells
}

func pingSeries(ctx context.Context, ns string, dst netip.Addr, cfg MatrixConfig) ([]time.Duration, error) {
	p, err := probe.Open(ns, dst.Is6(), netip.Addr{})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var out []time.Duration
	for i := 0; i < cfg.Count && ctx.Err() == nil; i++ {
		start := time.Now()
		r, err := p.Ping(dst, 64, false, cfg.Timeout)
		switch {
		case err != nil:
			return out, err
		case r.Outcome == probe.Reply:
			out = append(out, r.RTT)
		default:
			out = append(out, -1)
		}
		if rest := cfg.Interval - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
	}
	return out, nil
}

// OverlayCost is what the pod network adds over the underlay between two nodes.
type OverlayCost struct {
	From, To    string
	NodeP50     time.Duration
	PodP50      time.Duration
	Added       time.Duration
	Unavailable string `json:",omitempty"`
}

// OverlayCosts pairs node cells with pod cells between the same nodes.
func OverlayCosts(nodeCells, podCells []Cell, nodeOf map[string]string) []OverlayCost {
	pod := map[[2]string]Stats{}
	for _, c := range podCells {
		k := [2]string{nodeOf[c.From], nodeOf[c.To]}
		if _, ok := pod[k]; !ok && k[0] != k[1] {
			pod[k] = c.Stats
		}
	}
	var out []OverlayCost
	for _, c := range nodeCells {
		oc := OverlayCost{From: c.From, To: c.To, NodeP50: c.Stats.P50}
		ps, ok := pod[[2]string{c.From, c.To}]
		switch {
		case !ok:
			oc.Unavailable = "no pods on both nodes"
		case ps.Received == 0 || c.Stats.Received == 0:
			oc.Unavailable = "no answers"
		default:
			oc.PodP50, oc.Added = ps.P50, ps.P50-c.Stats.P50
		}
		out = append(out, oc)
	}
	return out
}

// Hop is one call of a chain: from a pod to a Service.
type Hop struct {
	From  string         `json:"from"` // pod "ns/name"
	Netns string         `json:"-"`
	To    string         `json:"to"` // service "ns/name:port"
	Dst   netip.AddrPort `json:"dst"`
	Stats Stats          `json:"stats"`
	Err   string         `json:"error,omitempty"`
}

// Chain measures TCP connect time (one round trip through the Service's DNAT to an
// endpoint) for each hop, count times, and the chain's total sample by sample.
func Chain(ctx context.Context, hops []Hop, count int, timeout time.Duration) ([]Hop, Stats) {
	if count <= 0 {
		count = 20
	}
	if timeout <= 0 {
		timeout = time.Second
	}
	var all [][]time.Duration
	for i := range hops {
		var samples []time.Duration
		for k := 0; k < count && ctx.Err() == nil; k++ {
			d, err := connectTime(hops[i].Netns, hops[i].Dst, timeout)
			if err != nil {
				hops[i].Err = err.Error()
				d = -1
			}
			samples = append(samples, d)
		}
		hops[i].Stats = Summarise(samples)
		all = append(all, samples)
	}
	return hops, Summarise(SumSamples(all))
}

func connectTime(ns string, dst netip.AddrPort, timeout time.Duration) (time.Duration, error) {
	var d time.Duration
	err := inns.Do(ns, func() error {
		start := time.Now()
		c, err := net.DialTimeout("tcp", dst.String(), timeout)
		if err != nil {
			return err
		}
		d = time.Since(start)
		return c.Close()
	})
	if err != nil {
		return -1, fmt.Errorf("connect %v: %w", dst, err)
	}
	return d, nil
}
