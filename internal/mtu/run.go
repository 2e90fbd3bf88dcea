package mtu

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/probe"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Config says what to probe.
type Config struct {
	Nodes []resolve.Node
	Pods  []resolve.Pod
	// A and B restrict the run to the two directions between two nodes ("" = all).
	A, B string
	// Timeout per probe (default 300ms) and Tries per size (default 2).
	Timeout time.Duration
	Tries   int
}

// Report is the outcome of a run.
type Report struct {
	Nodes    []NodeMTU     `json:"nodes"`
	Results  []PairResult  `json:"paths"`
	Findings []Finding     `json:"findings"`
	Elapsed  time.Duration `json:"elapsedNs"`
}

// Run probes every pair (or A and B) on both layers, in parallel.
func Run(ctx context.Context, cfg Config) (Report, error) {
	start := time.Now()
	if cfg.Timeout <= 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	if cfg.Tries <= 0 {
		cfg.Tries = 2
	}
	var rep Report
	nodes := map[string]resolve.Node{}
	for _, n := range cfg.Nodes {
		nodes[n.Name] = n
	}
	for _, name := range []string{cfg.A, cfg.B} {
		if _, ok := nodes[name]; name != "" && !ok {
			return rep, fmt.Errorf("node %q: not found", name)
		}
	}
	for _, n := range cfg.Nodes {
		if n.Here {
			rep.Nodes = append(rep.Nodes, configured(n))
		}
	}
	pairs := Pairs(cfg.Nodes, cfg.Pods, cfg.A, cfg.B)
	if len(pairs) == 0 {
		return rep, fmt.Errorf("nothing to probe: need two nodes with addresses, at least one of them on this machine")
	}
	rep.Results = make([]PairResult, len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Results[i] = probePair(ctx, p, cfg)
		}()
	}
	wg.Wait()
	rep.Findings = Findings(rep.Results, rep.Nodes)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// Pairs lists the directions to probe: underlay node to node, and overlay pod to pod
// (or node overlay address to node overlay address where a node runs no pod).
func Pairs(nodes []resolve.Node, pods []resolve.Pod, a, b string) []Pair {
	podOn := map[string]resolve.Pod{}
	sorted := append([]resolve.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	for _, p := range sorted {
		if _, ok := podOn[p.Node]; !ok && p.IP.IsValid() && p.Netns != "" {
			podOn[p.Node] = p
		}
	}
	var out []Pair
	for _, from := range nodes {
		for _, to := range nodes {
			if from.Name == to.Name || !from.Here || !to.IP.IsValid() {
				continue
			}
			if a != "" && !(from.Name == a && to.Name == b || from.Name == b && to.Name == a) {
				continue
			}
			out = append(out, Pair{Layer: Underlay, From: from.Name, To: to.Name, Src: from.Netns, Dst: to.IP})
			ov := Pair{Layer: Overlay, From: from.Name, To: to.Name, Src: from.Netns}
			if p, ok := podOn[from.Name]; ok {
				ov.FromPod, ov.Src = p.Key(), p.Netns
			}
			if p, ok := podOn[to.Name]; ok {
				ov.ToPod, ov.Dst = p.Key(), p.IP
			} else if to.Mode == string(podnet.ModeVXLAN) && to.PodCIDR.IsValid() {
				ov.Dst = podnet.GatewayAddr(to.PodCIDR) // the node's vxlan device address
			}
			if ov.Dst.IsValid() && (ov.FromPod != "" || from.Mode == string(podnet.ModeVXLAN)) {
				out = append(out, ov)
			}
		}
	}
	return out
}

func probePair(ctx context.Context, p Pair, cfg Config) PairResult {
	r := PairResult{Pair: p}
	pinger, err := probe.Open(p.Src, p.Dst.Is6(), netip.Addr{})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer pinger.Close()
	hi := pinger.InterfaceMTU(p.Dst)
	if hi == 0 {
		r.Err = fmt.Sprintf("no route to %v from %s", p.Dst, p.From)
		return r
	}
	r.Expected = hi
	lo := 576
	if p.Dst.Is6() {
		lo = 1280
	}
	res, err := Discover(func(size int) (probe.Result, error) {
		if err := ctx.Err(); err != nil {
			return probe.Result{}, err
		}
		return pinger.Ping(p.Dst, size, true, cfg.Timeout)
	}, Search{Lo: min(lo, hi), Hi: hi, Tries: cfg.Tries})
	if err != nil {
		r.Err = err.Error()
	}
	r.PathResult = res
	return r
}

// configured reads a node's MTUs from its namespace.
func configured(n resolve.Node) NodeMTU {
	c := NodeMTU{Node: n.Name, Pod: n.PodMTU}
	if n.Mode == string(podnet.ModeVXLAN) {
		c.Overhead = 50
		if n.IP.Is6() {
			c.Overhead = 70
		}
	}
	_ = inns.Do(n.Netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if _, ok := l.(*netlink.Vxlan); ok && strings.HasPrefix(l.Attrs().Name, "fjord.") {
				c.Device = l.Attrs().MTU
			}
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == n.IP {
					c.Underlay = l.Attrs().MTU
				}
			}
		}
		return nil
	})
	return c
}
