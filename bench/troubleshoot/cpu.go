package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fjord-net/fjord/internal/latency"
)

// probeCost is the CPU one node spends on RTT probes with n peers.
type probeCost struct {
	Peers    int
	Window   time.Duration
	CPUSecs  float64 // with prober and responders, minus idle
	IdleSecs float64
	Probes   int
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// proberCPU runs, for each peer count, n responders on loopback (what n peers send a
// node: its answers; and what it answers for them: the same number of packets) and one
// prober at the agent's default interval, for window, and compares this process's CPU
// time with the same window idle.
func proberCPU(ctx context.Context, peers []int, window time.Duration) ([]probeCost, error) {
	var out []probeCost
	for _, n := range peers {
		idleStart := cpuTime()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(window):
		}
		idle := cpuTime() - idleStart
		cctx, cancel := context.WithCancel(ctx)
		var list []latency.Peer
		for i := 0; i < n; i++ {
			r, err := latency.Listen("127.0.0.1:0")
			if err != nil {
				cancel()
				return nil, err
			}
			go r.Serve(cctx)
			list = append(list, latency.Peer{Name: fmt.Sprintf("p%d", i), Addr: r.Addr().(*net.UDPAddr).AddrPort()})
		}
		reg := prometheus.NewRegistry()
		p, err := latency.NewProber(latency.Config{Source: netip.MustParseAddr("127.0.0.1"), Peers: func() []latency.Peer { return list }}, reg)
		if err != nil {
			cancel()
			return nil, err
		}
		start := cpuTime()
		go p.Run(cctx)
		select {
		case <-ctx.Done():
		case <-time.After(window):
		}
		used := cpuTime() - start
		cancel()
		fams, _ := reg.Gather()
		probes := 0
		for _, f := range fams {
			if f.GetName() == "fjord_node_probes_total" {
				for _, m := range f.GetMetric() {
					probes += int(m.GetCounter().GetValue())
				}
			}
		}
		out = append(out, probeCost{Peers: n, Window: window, CPUSecs: (used - idle).Seconds(), IdleSecs: idle.Seconds(), Probes: probes})
		time.Sleep(200 * time.Millisecond)
	}
	return out, ctx.Err()
}

// agentUse is one lab agent's CPU over the window.
type agentUse struct {
	Node    string
	CPUSecs float64
}

// agentCPU reads the lab agents' CPU time (utime+stime, /proc) over window.
func agentCPU(ctx context.Context, lab string, window time.Duration) ([]agentUse, error) {
	pids := map[string]int{}
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(filepath.Join("/run/fjord", lab, "pids", fmt.Sprintf("agent-n%d.pid", i)))
		if err != nil {
			return nil, err
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		pids[fmt.Sprintf("n%d", i)] = pid
	}
	ticks := func(pid int) (float64, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+1:])
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		return (u + s) / 100, nil
	}
	start := map[string]float64{}
	for n, pid := range pids {
		t, err := ticks(pid)
		if err != nil {
			return nil, err
		}
		start[n] = t
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(window):
	}
	var out []agentUse
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("n%d", i)
		t, err := ticks(pids[n])
		if err != nil {
			return nil, err
		}
		out = append(out, agentUse{Node: n, CPUSecs: t - start[n]})
	}
	return out, nil
}
