package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process this benchmark started, in its own process group (nginx's
// workers and every child share it), killed with the benchmark if it dies.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logf string // its stderr
}

// start runs argv pinned to cpus (taskset execs the program, so the pid is
// the program's). stdout goes to stdoutPath if set, else with stderr to the
// log file TMP/name.log.
func (b *bench) start(name, cpus string, env []string, stdoutPath string, argv ...string) (*proc, error) {
	logPath := filepath.Join(b.tmp, name+".log")
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	var out io.Writer = lf
	if stdoutPath != "" {
		of, err := os.OpenFile(stdoutPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer of.Close()
		out = of
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpus}, argv...)...)
	cmd.Stdout, cmd.Stderr = out, lf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logf: logPath}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	b.procs = append(b.procs, p)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	pgid := p.pid()
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Whatever is left of the group (nginx workers, a stuck child).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

// logTail returns the last lines of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	bs, _ := os.ReadFile(p.logf)
	return tail(bs, n)
}

// usage is what /proc says about a process group.
type usage struct {
	CPU   time.Duration // user + system
	Sys   time.Duration // system alone
	RSS   int64         // bytes
	Procs int
}

// groupUsage sums CPU time and resident memory of every process in the process group pgid, from /proc.
func groupUsage(pgid int) (u usage) {
	ents, _ := os.ReadDir("/proc")
	page := int64(os.Getpagesize())
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		bs, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(bs)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		rss, _ := strconv.ParseInt(f[21], 10, 64)
		u.CPU += time.Duration(ut+st) * 10 * time.Millisecond // CLK_TCK is 100 on Linux
		u.Sys += time.Duration(st) * 10 * time.Millisecond
		u.RSS += rss * page
		u.Procs++
	}
	return u
}

// groupPids lists the processes of process group pgid.
func groupPids(pgid int) []int {
	var out []int
	want := strconv.Itoa(pgid)
	eachProc(func(pid int, _ string, f []string) {
		if len(f) > 2 && f[2] == want {
			out = append(out, pid)
		}
	})
	return out
}

// eachProc calls fn for every process with its name and the fields of
// /proc/PID/stat after the name (f[0] is the state, f[2] the process group).
func eachProc(fn func(pid int, comm string, f []string)) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		bs, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(bs)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		fn(pid, s[i+1:j], strings.Fields(s[j+1:]))
	}
}

// threadsOf returns the Threads: line of /proc/pid/status.
func threadsOf(pid int) int {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// freePort returns a TCP port that is free on every address in ips.
func freePort(ips ...string) (int, error) {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, ip := range ips[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l2)
		}
		for _, h := range held {
			h.Close()
		}
		l.Close()
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on %v", ips)
}

// cpuCount parses a taskset CPU list ("0", "0-1", "0,2") and counts it.
func cpuCount(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bad CPU list %q", list)
		}
		c := 1
		if isRange {
			z, err := strconv.Atoi(hi)
			if err != nil || z < a {
				return 0, fmt.Errorf("bad CPU list %q", list)
			}
			c = z - a + 1
		}
		n += c
	}
	return n, nil
}

// waitHTTP polls url (with Host header h) until it answers want, or the
// process dies, or limit passes.
func waitHTTP(ctx context.Context, p *proc, url, h string, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.logTail(15))
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if h != "" {
			req.Host = h
		}
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	name := "server"
	if p != nil {
		name = p.name
	}
	return fmt.Errorf("%s: %s did not answer %d within %s (last: %s)", name, url, want, limit, last)
}

// spread sends n requests to url with Host h over fresh connections and
// counts the answers by body: every proxy must reach every backend.
func spread(ctx context.Context, url, h string, n int) (map[string]int, error) {
	got := map[string]int{}
	c := &http.Client{Timeout: 2 * time.Second}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Host = h
		resp, err := c.Do(req)
		if err != nil {
			return got, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return got, fmt.Errorf("%s: %s", url, resp.Status)
		}
		name, _, _ := strings.Cut(string(body), " ")
		got[name]++
	}
	return got, nil
}

// procCPU is one process's CPU time so far.
type procCPU struct {
	comm string
	cpu  time.Duration
}

// othersSnapshot records the CPU time of every user-space process that is
// not this benchmark's (not in its process group nor in the group of a
// process it started): other people's work on the shared machine.
func (b *bench) othersSnapshot() map[int]procCPU {
	ours := map[string]bool{strconv.Itoa(syscall.Getpgrp()): true, "0": true} // 0: kernel threads
	for _, p := range b.procs {
		ours[strconv.Itoa(p.pid())] = true
	}
	out := map[int]procCPU{}
	eachProc(func(pid int, comm string, f []string) {
		if len(f) < 13 || ours[f[2]] {
			return
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = procCPU{comm, time.Duration(ut+st) * 10 * time.Millisecond}
	})
	return out
}

// othersDelta is the CPU time other processes used between two snapshots,
// and the names of the biggest users.
func othersDelta(a, b map[int]procCPU) (time.Duration, string) {
	var total time.Duration
	by := map[string]time.Duration{}
	for pid, x := range b {
		d := x.cpu - a[pid].cpu // a process born meanwhile counts whole
		if d > 0 {
			total += d
			by[x.comm] += d
		}
	}
	type kv struct {
		k string
		v time.Duration
	}
	var l []kv
	for k, v := range by {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(x, y kv) int { return int(y.v - x.v) })
	var names []string
	for i, e := range l {
		if i == 3 || e.v < total/10 {
			break
		}
		names = append(names, e.k)
	}
	return total, strings.Join(names, ", ")
}
