package main

// The four measurements at each size: programming from scratch (cold starts),
// connect times, one change reaching the kernel, and idle CPU; and freezing the
// proxies that are not being measured.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// coldStart empties the proxy's ruleset, starts it with all n services in its store,
// and times it from its process start to the moment the last-created service answers
// (and a sample of others does too).
func (b *bench) coldStart(ctx context.Context, s *system, n int) error {
	res := s.res(n)
	if err := s.stop(); err != nil {
		return err
	}
	// The other proxies are frozen meanwhile: each programs with the machine to itself.
	thaw := b.freezeAllBut(s)
	defer thaw()
	if err := s.flush(ctx); err != nil {
		return fmt.Errorf("%s: emptying its ruleset: %w", s.Name, err)
	}
	pid, err := s.start(ctx)
	if err != nil {
		return err
	}
	startBoot, err := procStartBoot(pid)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*flagSetupTimeout)
	alive := func() error {
		if !pidAlive(pid) {
			return fmt.Errorf("%s exited; see its log %s", s.Name, s.logPath())
		}
		return nil
	}
	w := s.worker()
	rng := rand.New(rand.NewPCG(*flagSeed, uint64(n)))
	sample := []int{0}
	for i := 0; i < 8 && n > 1; i++ {
		sample = append(sample, rng.IntN(n))
	}
	var ready time.Time
	for ready.IsZero() {
		got, err := w.waitServing(ctx, serviceAddr(n-1), deadline, alive)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.ColdFail = err.Error()
			if errors.Is(err, errTimeout) {
				res.ColdFail = fmt.Sprintf("not serving after %s", flagSetupTimeout.Round(time.Second))
				s.broken = fmt.Sprintf("timed out at %d services", n)
			} else {
				s.broken = fmt.Sprintf("failed at %d services", n)
			}
			b.logf("%-20s n=%-6d cold start FAILED: %v", s.Name, n, err)
			_ = s.stop() // do not let it compete for the CPUs any longer
			return nil
		}
		ready = got
		for _, i := range sample {
			if _, err := w.connectTime(serviceAddr(i), time.Second); err != nil {
				ready = time.Time{}
				break
			}
		}
		if ready.IsZero() {
			time.Sleep(50 * time.Millisecond)
		}
	}
	boot := boottime() - time.Since(ready).Seconds()
	secs := boot - startBoot
	cpu := treeCPU(pid)
	res.Cold, res.ColdCPU = append(res.Cold, secs), append(res.ColdCPU, cpu)
	// Where the time went, from the proxy's own log: the moment it had started its
	// service proxy (fjord) or had every object in its informers (kube-proxy).
	wallStart := time.Now().Add(-time.Duration((boottime() - startBoot) * float64(time.Second)))
	phase := "?"
	if t, ok := logMark(s.Key, s.logPath(), wallStart); ok {
		res.ColdPhase = append(res.ColdPhase, t.Sub(wallStart).Seconds())
		phase = fmt.Sprintf("%.2f s", t.Sub(wallStart).Seconds())
	}
	b.logf("%-20s n=%-6d cold start %7.2f s  (CPU %.2f s, pid %d; log mark after %s)", s.Name, n, secs, cpu, pid, phase)
	return nil
}

// logMark finds, in a proxy's log, the first line after start that says it has what
// it needs to program: fjord's "service proxy" (the proxy starts; it lists the store
// next), kube-proxy's last "Caches are synced" for service and endpoint slice config.
func logMark(key, path string, start time.Time) (time.Time, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	start = start.Add(-50 * time.Millisecond) // the log's clock and /proc's ticks
	var marks []time.Time
	for _, line := range strings.Split(string(data), "\n") {
		var t time.Time
		if key == "fjord" {
			if !strings.Contains(line, `msg="service proxy"`) {
				continue
			}
			v, ok := strings.CutPrefix(line, "time=")
			if !ok || len(v) < 20 {
				continue
			}
			if t, err = time.Parse(time.RFC3339Nano, strings.Fields(v)[0]); err != nil {
				continue
			}
		} else {
			if !strings.Contains(line, `"Caches are synced" controller="service config"`) &&
				!strings.Contains(line, `"Caches are synced" controller="endpoint slice config"`) {
				continue
			}
			f := strings.Fields(line) // I1125 19:01:37.123902 pid file] ...
			if len(f) < 2 || len(f[0]) != 5 {
				continue
			}
			tt, err := time.Parse("0102 15:04:05.000000", f[0][1:]+" "+f[1])
			if err != nil {
				continue
			}
			t = time.Date(start.Year(), tt.Month(), tt.Day(), tt.Hour(), tt.Minute(), tt.Second(), tt.Nanosecond(), time.Local)
		}
		if t.After(start) {
			marks = append(marks, t)
		}
	}
	if len(marks) == 0 {
		return time.Time{}, false
	}
	if key == "fjord" {
		return marks[0], true
	}
	if len(marks) < 2 {
		return time.Time{}, false
	}
	return marks[1], true // both informers
}

// connects times TCP connects to random services through every proxy, interleaved
// in batches; every proxy gets the same services in the same order.
func (b *bench) connects(ctx context.Context, n int) error {
	var sys []*system
	for _, s := range b.active() {
		if s.usable(n) {
			sys = append(sys, s)
		}
	}
	if len(sys) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(*flagSeed+1, uint64(n)))
	targets := make([]int, *flagConnects)
	for i := range targets {
		targets[i] = rng.IntN(n)
	}
	// Warm-up, not counted: caches, ARP, the first conntrack entries.
	for _, s := range sys {
		for i := 0; i < 20; i++ {
			_, _ = s.worker().connectTime(serviceAddr(rng.IntN(n)), time.Second)
		}
	}
	// Small batches with a pause after each round, so the measurement spans seconds and
	// a burst of load elsewhere on the machine hits every proxy alike.
	const batch = 10
	for bi := 0; bi*batch < len(targets); bi++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
		part := targets[bi*batch : min((bi+1)*batch, len(targets))]
		for _, s := range rotate(sys, bi) {
			res := s.res(n)
			w := s.worker()
			for _, i := range part {
				d, err := w.connectTime(serviceAddr(i), time.Second)
				if err != nil {
					res.ConnectFails++
					res.ConnectErr = fmt.Sprintf("%s: %v", serviceAddr(i), err)
					continue
				}
				res.Connect = append(res.Connect, float64(d.Nanoseconds())/1e3)
			}
		}
	}
	for _, s := range sys {
		res := s.res(n)
		b.logf("%-20s n=%-6d connect p50 %7.1f µs  p99 %7.1f µs  (%d ok, %d failed)", s.Name, n,
			benchkit.Quantile(res.Connect, 0.5), benchkit.Pct(res.Connect, 99), len(res.Connect), res.ConnectFails)
	}
	return nil
}

// changes points one service's EndpointSlice at echo-d alone and times until d answers
// through the proxy, then back to a, b, c until one of them answers. fjord is measured
// with both kube-proxies frozen; the two kube-proxies share kube-apiserver, so one
// write reaches both and they are measured together, on the same write, with fjord
// frozen. Every write comes at least 1.1 s after the previous one to the same store,
// so minSyncPeriod (1 s by default, for fjord and kube-proxy) never holds a change back.
func (b *bench) changes(ctx context.Context, n int) error {
	var groups [][]*system
	var kube []*system
	for _, s := range b.active() {
		if !s.usable(n) {
			continue
		}
		if s.Key == "fjord" {
			groups = append(groups, []*system{s})
		} else {
			kube = append(kube, s)
		}
	}
	if len(kube) > 0 {
		groups = append(groups, kube)
	}
	if len(groups) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(*flagSeed+2, uint64(n)))
	last := map[string]time.Time{}
	for c := 0; c < *flagChanges; c++ {
		svc := rng.IntN(n)
		seenD := map[*system]bool{}
		for _, toD := range []bool{true, false} {
			for _, g := range rotate(groups, c) {
				// A proxy whose changes take over 20 s (or are not seen) gives two
				// samples per size at most: the run has a time budget.
				var measure []*system
				for _, s := range g {
					r := s.res(n)
					slow := r.ChangeFails > 0 || maxOf(r.Change) > 20000
					if toD && slow && len(r.Change)+r.ChangeFails >= 2 {
						if c > 0 && !r.ChangesCapped {
							r.ChangesCapped = true
							b.logf("%-20s n=%-6d no more changes measured at this size (slow)", s.Name, n)
						}
						continue
					}
					// "Back to a, b, c" only means something if "to d" was seen.
					if !toD && !seenD[s] {
						continue
					}
					measure = append(measure, s)
				}
				if len(measure) == 0 {
					if !toD {
						// Restore the slice anyway, unmeasured.
						if err := g[0].setSlice(ctx, svc, g[0].backends("a", "b", "c")); err != nil {
							return err
						}
					}
					continue
				}
				seen, err := b.change(ctx, n, g, measure, svc, toD, last)
				if err != nil {
					return err
				}
				for s, ok := range seen {
					if toD {
						seenD[s] = ok
					}
				}
			}
		}
	}
	for _, g := range groups {
		for _, s := range g {
			res := s.res(n)
			b.logf("%-20s n=%-6d change median %7.1f ms (min %.1f, max %.1f; write ack median %.1f ms; %d not seen)", s.Name, n,
				benchkit.Quantile(res.Change, 0.5), minOf(res.Change), maxOf(res.Change), benchkit.Quantile(res.ChangeAck, 0.5), res.ChangeFails)
		}
	}
	return nil
}

// change makes one write (to the store g shares) and times until every proxy of g
// serves it.
func (b *bench) change(ctx context.Context, n int, g, measure []*system, svc int, toD bool, last map[string]time.Time) (map[*system]bool, error) {
	thaw := b.freezeAllBut(g...)
	defer thaw()
	store := g[0].Key
	if wait := time.Until(last[store].Add(1100 * time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	eps, want := g[0].backends("d"), []string{"echo-d"}
	if !toD {
		eps, want = g[0].backends("a", "b", "c"), []string{"echo-a", "echo-b", "echo-c"}
	}
	t0 := time.Now()
	if err := g[0].setSlice(ctx, svc, eps); err != nil {
		return nil, fmt.Errorf("changing %s: %w", serviceName(svc), err)
	}
	acked := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seenBy := map[*system]bool{}
	for _, s := range measure {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := s.res(n)
			deadline := acked.Add(*flagChangeTO)
			var seen time.Time
			var lastErr error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				id, err := s.worker().httpIdentity(serviceAddr(svc), time.Second)
				if err == nil && slices.Contains(want, id) {
					seen = time.Now()
					break
				}
				if err != nil {
					lastErr = err
				}
				time.Sleep(2 * time.Millisecond)
			}
			if ctx.Err() != nil {
				return
			}
			if seen.IsZero() {
				mu.Lock()
				defer mu.Unlock()
				res.ChangeFails++
				res.ChangeErr = fmt.Sprintf("%s not answered by %v within %s (last error %v)", serviceName(svc), want, *flagChangeTO, lastErr)
				b.logf("%-20s n=%-6d change NOT SEEN: %s", s.Name, n, res.ChangeErr)
				return
			}
			res.Change = append(res.Change, float64(seen.Sub(acked).Microseconds())/1e3)
			res.ChangeAck = append(res.ChangeAck, float64(acked.Sub(t0).Microseconds())/1e3)
			mu.Lock()
			seenBy[s] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	last[store] = time.Now()
	return seenBy, ctx.Err()
}

// idle measures each proxy's CPU use (its process and its children) over a window in
// which nothing changes: the cost of periodic resyncs with all services programmed.
// All proxies run; the window is the same for all.
func (b *bench) idle(ctx context.Context, n int) error {
	var sys []*system
	for _, s := range b.active() {
		if s.usable(n) && s.pid() != 0 {
			sys = append(sys, s)
		}
	}
	if len(sys) == 0 {
		return nil
	}
	win := *flagIdle
	if n < 10000 {
		win /= 3
	}
	start := map[string]float64{}
	for _, s := range sys {
		start[s.Key] = treeCPU(s.pid())
	}
	t0 := time.Now()
	// Sample what the proxies run meanwhile (nft, iptables-restore, ...).
	samples := 0
	children := map[string]map[string]int{}
	for time.Since(t0) < win {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		samples++
		for _, s := range sys {
			if children[s.Key] == nil {
				children[s.Key] = map[string]int{}
			}
			seen := map[string]bool{}
			for _, c := range descendants(s.pid()) {
				if !seen[c] {
					children[s.Key][c]++
					seen[c] = true
				}
			}
		}
	}
	secs := time.Since(t0).Seconds()
	for _, s := range sys {
		res := s.res(n)
		res.IdleCPU, res.IdleWindow = (treeCPU(s.pid())-start[s.Key])/secs, secs
		res.IdleChildren, res.IdleSamples = children[s.Key], samples
		b.logf("%-20s n=%-6d idle CPU %.3f s/s over %.0f s", s.Name, n, res.IdleCPU, secs)
	}
	return nil
}

// freezeAllBut stops (SIGSTOP) the process groups of every running proxy not in keep,
// so they do not compete for the CPUs; the returned function continues them.
func (b *bench) freezeAllBut(keep ...*system) func() {
	var groups []int
	for _, s := range b.active() {
		if slices.Contains(keep, s) || s.pid() == 0 {
			continue
		}
		pgid, err := syscall.Getpgid(s.pid())
		if err != nil || pgid <= 1 || pgid == syscall.Getpgrp() {
			continue
		}
		if syscall.Kill(-pgid, syscall.SIGSTOP) == nil {
			groups = append(groups, pgid)
			b.mu.Lock()
			if b.frozen == nil {
				b.frozen = map[int]bool{}
			}
			b.frozen[pgid] = true
			b.mu.Unlock()
		}
	}
	return func() {
		for _, g := range groups {
			_ = syscall.Kill(-g, syscall.SIGCONT)
			b.mu.Lock()
			delete(b.frozen, g)
			b.mu.Unlock()
		}
	}
}
