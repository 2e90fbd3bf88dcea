package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

func ingressStreams(s *stream) bool { return s.Class == classIngress }

// ingressChanges applies -changes versions of the Ingress chaos.lab with `fjord apply`,
// one after the other, alternating its backend between the Services echo and chaos-np
// (the same pods), while the traffic flows.
func (b *bench) ingressChanges(ctx context.Context, res *results) error {
	r := faultResult{Name: fmt.Sprintf("%d Ingress changes (`fjord apply` in a loop)", *flagChanges), Design: designChanges, ZeroLoss: true,
		RecoverWhat: "—", Reps: 1}
	f, err := os.CreateTemp("", "fjord-chaos-ingress-*.yaml")
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(f.Name())
	start := time.Now()
	failed := 0
	for i := 1; i <= *flagChanges; i++ {
		backend := `        backend: {service: {name: echo, port: {name: http}}}`
		if i%2 == 1 {
			backend = `        backend: {service: {name: chaos-np, port: {number: 80}}}`
		}
		doc := strings.Replace(chaosIngressHead, "metadata: {name: chaos, namespace: default}",
			fmt.Sprintf("metadata: {name: chaos, namespace: default, annotations: {chaos.fjord.dev/generation: %q}}", strconv.Itoa(i)), 1) + backend + "\n"
		if err := os.WriteFile(f.Name(), []byte(doc), 0o644); err != nil {
			return err
		}
		if _, err := b.fj(ctx, 30*time.Second, "apply", "-f", f.Name()); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			if failed > 10 {
				return fmt.Errorf("apply keeps failing: %w", err)
			}
		}
		if i%200 == 0 {
			logf("%d changes applied", i)
		}
	}
	took := time.Since(start)
	r.Notes = append(r.Notes, fmt.Sprintf("%d changes in %.0f s (%.0f a second, each a `fjord apply` process); %d applies failed",
		*flagChanges, took.Seconds(), float64(*flagChanges)/took.Seconds(), failed))
	end := time.Now().Add(*flagReqTO)
	if err := sleep(ctx, *flagReqTO); err != nil {
		return err
	}
	r.Traffic = b.tr.window(start, end, ingressStreams)
	r.Others = sum(b.tr.window(start, end, func(s *stream) bool { return !ingressStreams(s) }))
	res.Faults = append(res.Faults, r)
	return nil
}

// slowloris holds -slowloris connections to the ingress that send a request head one
// header line every 5 s and never finish it, for -slowloris-for, while the traffic
// flows. The ingress requests' latency is compared with 10 s just before.
func (b *bench) slowloris(ctx context.Context, res *results) error {
	r := faultResult{Name: fmt.Sprintf("%d slowloris connections against the ingress for %v", *flagSlow, *flagSlowFor), Design: designSlowloris,
		ZeroLoss: true, RecoverWhat: "—", Reps: 1}
	quiet := time.Now() // the baseline: 10 s with nothing going on
	if err := sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	base := b.durations(quiet, time.Now())
	addr := b.nodeAddr["n1"].String() + ":80"
	ctx2, cancel := context.WithTimeout(ctx, *flagSlowFor)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var opened, closedEarly int
	var closedAfter []float64
	for i := 0; i < *flagSlow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			mu.Lock()
			opened++
			mu.Unlock()
			t0 := time.Now()
			gone := make(chan struct{})
			go func() { // the server ending the connection
				_, _ = bufio.NewReader(c).ReadByte()
				close(gone)
			}()
			fmt.Fprintf(c, "GET /slow-%d HTTP/1.1\r\nHost: %s\r\n", i, chaosHost)
			for h := 0; ; h++ {
				select {
				case <-ctx2.Done():
					return
				case <-gone:
					mu.Lock()
					closedEarly++
					closedAfter = append(closedAfter, time.Since(t0).Seconds())
					mu.Unlock()
					return
				case <-time.After(5 * time.Second):
					if _, err := fmt.Fprintf(c, "X-Slow-%d: %d\r\n", h, h); err != nil {
						<-gone
					}
				}
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	during := b.durations(start, end)
	r.Traffic = b.tr.window(start, end, ingressStreams)
	r.Others = sum(b.tr.window(start, end, func(s *stream) bool { return !ingressStreams(s) }))
	r.Notes = append(r.Notes, fmt.Sprintf("%d connections opened; %d ended by the ingress before the client stopped%s",
		opened, closedEarly, medianNote(closedAfter)))
	r.Notes = append(r.Notes, fmt.Sprintf("ingress requests, p50 / p99 latency: %.1f / %.1f ms in the 10 s before, %.1f / %.1f ms during",
		benchkit.Pct(base, 50), benchkit.Pct(base, 99), benchkit.Pct(during, 50), benchkit.Pct(during, 99)))
	res.Faults = append(res.Faults, r)
	return nil
}

func medianNote(v []float64) string {
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprintf(" (median %.0f s after they opened)", benchkit.Median(v))
}

// durations lists the answered ingress requests' latencies (ms) due in [from, to).
func (b *bench) durations(from, to time.Time) []float64 {
	var out []float64
	for _, s := range b.tr.streams {
		if s.Class != classIngress {
			continue
		}
		for _, r := range s.between(from, to) {
			if r.Err == "" {
				out = append(out, float64(r.Dur.Microseconds())/1000)
			}
		}
	}
	return out
}

// ingressRestarts stops the ingress with SIGTERM (a graceful stop), waits for it to
// exit and starts it again with the same arguments in n1's namespace, as the lab does.
// Time to recover: from SIGTERM until the new process answers.
func (b *bench) ingressRestarts(ctx context.Context, res *results) error {
	r := faultResult{Name: "restart of the ingress process (SIGTERM, then start)", Design: designIngressRestart,
		RecoverWhat: "SIGTERM → new process answers"}
	start := time.Now()
	probe := httpGet(hostDialer(), b.nodeAddr["n1"].String()+":80", chaosHost, "")
	for i := 0; i < *flagRestarts; i++ {
		pid, err := labProcess("ingress-n1")
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return err
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return err
		}
		if _, err := waitFor(ctx, 40*time.Second, "the ingress to exit", func() bool {
			return syscall.Kill(pid, 0) != nil
		}); err != nil {
			return err
		}
		if err := spawnIngress(args); err != nil {
			return err
		}
		t1, err := waitFor(ctx, 60*time.Second, "the new ingress to answer", func() bool {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return probe(cctx, 0) == nil
		})
		if err != nil {
			return err
		}
		r.Recover = append(r.Recover, secs(t1.Sub(t0)))
		r.Reps++
		logf("ingress restarted; answering %v after SIGTERM", t1.Sub(t0).Round(time.Millisecond))
		if err := sleep(ctx, 5*time.Second); err != nil {
			return err
		}
	}
	end := time.Now()
	r.Traffic = b.tr.window(start, end, ingressStreams)
	r.Others = sum(b.tr.window(start, end, func(s *stream) bool { return !ingressStreams(s) }))
	res.Faults = append(res.Faults, r)
	return nil
}

// spawnIngress starts `fjord ingress` (args as its cmdline was) in n1's namespace, in
// a session of its own, with the lab's markers (so `lab down` finds it) and its log
// file. It is this process's child: a goroutine reaps it.
func spawnIngress(args []string) error {
	if len(args) < 2 || args[1] != "ingress" {
		return fmt.Errorf("unexpected ingress command line %q", args)
	}
	logf, err := os.OpenFile(filepath.Join(labStateDir, "logs", "ingress-n1.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(args[0], append([]string{"netns-exec", "/run/netns/fjord-" + labName + "-n1", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "FJORD_LAB="+labName, "FJORD_LAB_PROC=ingress-n1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it when it exits (a zombie would look alive)
	return os.WriteFile(filepath.Join(labStateDir, "pids", "ingress-n1.pid"), []byte(strconv.Itoa(pid)), 0o644)
}
