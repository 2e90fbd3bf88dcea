package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/internal/lab"
)

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitFor polls cond every 50 ms for at most limit and returns when it first held.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return time.Now(), nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, fmt.Errorf("%s: not within %v", what, limit)
}

func secs(d time.Duration) float64 { return d.Seconds() }

// do runs the whole benchmark.
func (b *bench) do(ctx context.Context, res *results) error {
	if err := b.setUp(ctx); err != nil {
		return err
	}
	streams, err := b.streams()
	if err != nil {
		return err
	}
	res.Streams = len(streams)
	b.watch = startSliceWatcher(ctx, b.st)
	b.tr = &traffic{streams: streams, period: *flagPeriod, timeout: *flagReqTO}
	b.tr.start(ctx)
	logf("traffic: %d streams, a request every %v each", len(streams), *flagPeriod)
	// Warm-up, then a quiet baseline: nothing may be lost with no fault at all.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	res.Baseline = b.tr.window(t0, time.Now(), nil)

	steps := []struct {
		name string
		f    func(context.Context, *results) error
	}{
		{"agent", b.agentRestarts},
		{"etcd", b.etcdFreeze},
		{"partition", b.partitions},
		{"changes", b.ingressChanges},
		{"slowloris", b.slowloris},
		{"ingress-restart", b.ingressRestarts},
	}
	only := map[string]bool{}
	for _, s := range strings.Split(*flagOnly, ",") {
		if s != "" {
			only[s] = true
		}
	}
	for _, s := range steps {
		if len(only) > 0 && !only[s.name] {
			continue
		}
		logf("== %s", s.name)
		if err := s.f(ctx, res); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		// Between faults everything must be back: every endpoint ready again.
		if _, err := waitFor(ctx, 60*time.Second, "every endpoint ready after "+s.name, func() bool {
			for _, n := range b.nodes {
				if all, _ := b.watch.state(b.podIP[n]); !all {
					return false
				}
			}
			return true
		}); err != nil {
			return err
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// agentRestarts kills every node's agent with SIGKILL and starts it again, one node
// after the other, -rounds times. Time to recover: from the kill until the new
// agent's service proxy reports healthy (/healthz 200 on the node's address).
func (b *bench) agentRestarts(ctx context.Context, res *results) error {
	r := faultResult{Name: "agent `kill -9` and restart, every node", Design: designAgent, ZeroLoss: true,
		RecoverWhat: "kill → new agent's /healthz 200"}
	start := time.Now()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	for round := 0; round < *flagRounds; round++ {
		for _, n := range b.nodes {
			t0 := time.Now()
			if _, err := b.fj(ctx, time.Minute, "lab", "restart-agent", "--kill", n, "--name", labName); err != nil {
				return err
			}
			url := fmt.Sprintf("http://%v:10256/healthz", b.nodeAddr[n])
			t1, err := waitFor(ctx, 60*time.Second, n+"'s agent healthy", func() bool {
				resp, err := client.Get(url)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			if err != nil {
				return err
			}
			r.Recover = append(r.Recover, secs(t1.Sub(t0)))
			r.Reps++
			logf("%s: agent back in %v", n, t1.Sub(t0).Round(time.Millisecond))
			if err := sleep(ctx, 2*time.Second); err != nil {
				return err
			}
		}
	}
	end := time.Now().Add(*flagReqTO)
	if err := sleep(ctx, *flagReqTO); err != nil {
		return err
	}
	r.Traffic = b.tr.window(start, end, nil)
	r.Flaps = len(b.watch.changesOf("", start, end))
	res.Faults = append(res.Faults, r)
	return nil
}

// etcdPID finds the lab's etcd by its pid file and checks the process is the lab's.
func etcdPID() (int, error) {
	raw, err := os.ReadFile(labStateDir + "/pids/etcd.pid")
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, err
	}
	if p, err := labProcess("etcd"); err != nil || p != pid {
		return 0, fmt.Errorf("pid %d in etcd.pid is not lab %s's etcd (%v)", pid, labName, err)
	}
	return pid, nil
}

// resumeEtcd sends SIGCONT to the lab's etcd, whatever state it is in.
func resumeEtcd() {
	if pid, err := etcdPID(); err == nil {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// etcdFreeze stops the store with SIGSTOP for -freeze and resumes it. Time to recover:
// from SIGCONT until every node's Lease is back and an endpoints controller leads.
func (b *bench) etcdFreeze(ctx context.Context, res *results) error {
	r := faultResult{Name: fmt.Sprintf("etcd frozen (SIGSTOP) for %v, then SIGCONT", *flagFreeze), Design: designEtcd, ZeroLoss: true,
		RecoverWhat: "SIGCONT → every Lease back and a leader"}
	start := time.Now()
	for i := 0; i < *flagFreezes; i++ {
		pid, err := etcdPID()
		if err != nil {
			return err
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return err
		}
		logf("etcd (pid %d) stopped for %v", pid, *flagFreeze)
		err = sleep(ctx, *flagFreeze)
		if cerr := syscall.Kill(pid, syscall.SIGCONT); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		t1 := time.Now()
		t2, err := waitFor(ctx, 60*time.Second, "Leases and a leader after the freeze", func() bool {
			return b.leases(ctx) == len(b.nodes) && b.leader(ctx) != ""
		})
		if err != nil {
			return err
		}
		r.Recover = append(r.Recover, secs(t2.Sub(t1)))
		r.Reps++
		logf("store back; Leases and leader in %v", t2.Sub(t1).Round(time.Millisecond))
		if err := sleep(ctx, 10*time.Second); err != nil {
			return err
		}
		if spans := b.watch.downSpans(start, time.Now()); len(spans) == 0 {
			r.Notes = append(r.Notes, "the slice watcher never saw the store stop: the freeze did not take")
		}
	}
	end := time.Now()
	r.Traffic = b.tr.window(start, end, nil)
	r.Flaps = len(b.watch.changesOf("", start, end))
	res.Faults = append(res.Faults, r)
	return nil
}

// partitions cuts a node off the underlay (`lab fault partition`): -partitions long
// ones (alternating n3 and n2) and -hiccups of 1 s (n3).
func (b *bench) partitions(ctx context.Context, res *results) error {
	for i := 0; i < *flagParts; i++ {
		node := []string{"n3", "n2"}[i%2]
		p, err := b.partition(ctx, node, *flagPartition)
		if err != nil {
			return err
		}
		res.Partitions = append(res.Partitions, p)
		logf("partition %s: out of every Service after %.2f s, back %.2f s after the heal; lost %d (healthy) %d (cut); late: %v",
			node, p.Out, p.Back, p.Healthy.Lost, p.Cut.Lost, p.Late)
	}
	for i := 0; i < *flagHiccups; i++ {
		p, err := b.partition(ctx, "n3", time.Second)
		if err != nil {
			return err
		}
		res.Hiccups = append(res.Hiccups, p)
		logf("hiccup n3 (%.2f s): %d readiness changes; lost %d (healthy) %d (cut)", p.Length, p.Flaps, p.Healthy.Lost, p.Cut.Lost)
	}
	return nil
}

// partition cuts node off for d and measures what happened.
func (b *bench) partition(ctx context.Context, node string, d time.Duration) (partitionResult, error) {
	p := partitionResult{Node: node, Leader: b.leader(ctx)}
	ip, cidr := b.podIP[node], b.podCIDR[node]
	var others []string
	for _, n := range b.nodes {
		if n != node {
			others = append(others, n)
		}
	}
	pw := watchProxies(ctx, others, ip)
	// In this process, not through `fjord lab fault` (the same code): a command's start
	// would make a 1 s cut last seconds on a busy machine.
	if _, err := lab.InjectFault(runRoot, labName, lab.FaultSpec{Kind: lab.FaultPartition, Node: node}); err != nil {
		pw.stop()
		return p, err
	}
	t0 := time.Now()
	err := sleep(ctx, d)
	if err == nil && d > time.Second {
		p.RoutesStay = true
		for _, n := range others {
			p.RoutesStay = p.RoutesStay && hasRoute(ctx, n, cidr)
		}
	}
	if _, cerr := lab.ClearFaults(runRoot, labName, lab.FaultPartition, node); cerr != nil && err == nil {
		err = cerr
	}
	t1 := time.Now()
	pw.heal()
	if err != nil {
		pw.stop()
		return p, err
	}
	p.Length = secs(t1.Sub(t0))
	settle := 10 * time.Second
	if d > time.Second {
		if _, err := waitFor(ctx, 90*time.Second, node+"'s endpoints back after the heal", func() bool {
			all, _ := b.watch.state(ip)
			return all
		}); err != nil {
			pw.stop()
			return p, err
		}
		settle = 3 * time.Second
	}
	if err := sleep(ctx, settle+*flagReqTO); err != nil {
		pw.stop()
		return p, err
	}
	end := time.Now()
	gone, back := pw.stop()

	p.Healthy = sum(b.tr.window(t0, end, func(s *stream) bool { return !s.involves(node) }))
	p.Cut = sum(b.tr.window(t0, end, func(s *stream) bool { return s.involves(node) }))
	p.HealthyByClass = b.tr.window(t0, end, func(s *stream) bool { return !s.involves(node) })
	p.Flaps = len(b.watch.changesOf(ip, t0, end))
	if d <= time.Second {
		return p, nil
	}
	if out := b.watch.firstAll(ip, false, t0, t1); !out.IsZero() {
		p.Out = secs(out.Sub(t0))
	} else {
		p.Out = -1
	}
	p.ProxyOut = -1
	for _, n := range others {
		g, ok := gone[n]
		if !ok || g.After(t1) {
			p.ProxyOut = -1
			break
		}
		p.ProxyOut = max(p.ProxyOut, secs(g.Sub(t0)))
	}
	if !p.Healthy.Last.IsZero() && p.Healthy.Last.Before(t1) {
		p.LastLoss = secs(p.Healthy.Last.Sub(t0))
	}
	// Requests from the other nodes lost after the endpoints had left every proxy
	// (and those sent before had timed out): nothing should send them to the cut
	// node any more.
	if left := max(p.Out, p.ProxyOut); left > 0 {
		after := t0.Add(time.Duration(left*float64(time.Second)) + *flagReqTO)
		for _, s := range b.tr.streams {
			if s.involves(node) {
				continue
			}
			for _, r := range s.between(after, t1) {
				if r.Err != "" {
					p.Late = append(p.Late, fmt.Sprintf("%s at %.1f s (%s)", s.Name, secs(r.At.Sub(t0)), r.Err))
				}
			}
		}
	}
	if bk := b.watch.firstAll(ip, true, t1, end); !bk.IsZero() {
		p.Back = secs(bk.Sub(t1))
	} else {
		p.Back = -1
	}
	p.ProxyBack = -1
	for _, n := range others {
		if bk, ok := back[n]; ok {
			p.ProxyBack = max(p.ProxyBack, secs(bk.Sub(t1)))
		} else {
			p.ProxyBack = -1
			break
		}
	}
	return p, nil
}

func sum(m map[string]tally) tally {
	var t tally
	for _, x := range m {
		t.merge(x)
	}
	return t
}
