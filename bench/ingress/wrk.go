package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sample is one wrk run against one target.
type sample struct {
	Round, Conns  int
	RPS           float64
	P50, P90, P99 time.Duration
	Max           time.Duration
	Requests      int64
	Non2xx        int64
	SockErr       [4]int64      // connect, read, write, timeout
	CPU, Sys      time.Duration // the proxy's CPU time during the run, and its system part
	RSS           int64
	LogLines      int64   // access log lines written during the run
	Others        float64 // CPUs other people's processes kept busy during the run (0–2 here)
	OthersTop     string  // their names
	Raw           string
}

func (s *sample) errors() int64 {
	return s.Non2xx + s.SockErr[0] + s.SockErr[1] + s.SockErr[2] + s.SockErr[3]
}

// cpuPerReq is the proxy's CPU time per request in microseconds.
func (s *sample) cpuPerReq() float64 {
	if s.Requests == 0 {
		return math.NaN()
	}
	return float64(s.CPU.Microseconds()) / float64(s.Requests)
}

// perReq divides a count by the requests wrk completed.
func (s *sample) perReq(n int64) float64 {
	if s.Requests == 0 {
		return math.NaN()
	}
	return float64(n) / float64(s.Requests)
}

// runWrkOnly runs wrk against t with c connections for d, pinned to the
// client CPUs.
func (b *bench) runWrkOnly(ctx context.Context, t *target, c int, d time.Duration) (*sample, error) {
	threads := min(*flagThreads, c)
	args := []string{"-c", *flagClientCP, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(c),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "-H", "Host: " + host, t.URL}
	if t.proc != nil && t.proc.exited() {
		return nil, fmt.Errorf("%s is not running (%v):\n%s", t.Name, t.proc.err, t.proc.logTail(15))
	}
	rctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(rctx, "taskset", args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(args[2:], " "), err, out)
	}
	s, err := parseWrk(string(out))
	if err != nil {
		return nil, fmt.Errorf("wrk against %s: %v\n%s", t.Name, err, out)
	}
	s.Conns = c
	return s, nil
}

// runWrk runs wrk (runWrkOnly) and measures the target's process group
// meanwhile: CPU, memory, access-log lines.
func (b *bench) runWrk(ctx context.Context, t *target, c int, d time.Duration) (*sample, error) {
	var u0 usage
	if t.proc != nil {
		u0 = groupUsage(t.proc.pid())
	}
	o0, start := b.othersSnapshot(), time.Now()
	s, err := b.runWrkOnly(ctx, t, c, d)
	if err != nil {
		return nil, err
	}
	od, top := othersDelta(o0, b.othersSnapshot())
	s.Others, s.OthersTop = od.Seconds()/time.Since(start).Seconds(), top
	if t.proc != nil {
		u1 := groupUsage(t.proc.pid())
		s.CPU, s.Sys, s.RSS = u1.CPU-u0.CPU, u1.Sys-u0.Sys, u1.RSS
		if t.proc.exited() {
			return nil, fmt.Errorf("%s died during the run (%v):\n%s", t.Name, t.proc.err, t.proc.logTail(20))
		}
	}
	if t.AccessLog != "" {
		n, err := countAndTruncate(t.AccessLog)
		if err != nil {
			return nil, err
		}
		s.LogLines = n
	}
	return s, nil
}

// countAndTruncate counts the lines of an access log and empties it. The
// proxies open it O_APPEND, so their next write lands at the new end.
func countAndTruncate(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 1<<20)
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, f.Truncate(0)
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reReqs    = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	rePct     = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	reMax     = regexp.MustCompile(`(?m)^\s+Latency\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s|m)`)
)

func parseDur(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	m := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[unit]
	return time.Duration(f * m)
}

func parseWrk(out string) (*sample, error) {
	s := &sample{Raw: out}
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no Requests/sec line")
	}
	s.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m = reReqs.FindStringSubmatch(out); m != nil {
		s.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = reNon2xx.FindStringSubmatch(out); m != nil {
		s.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = reSockErr.FindStringSubmatch(out); m != nil {
		for i := range 4 {
			s.SockErr[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
	}
	found := 0
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		d := parseDur(m[2], m[3])
		switch m[1] {
		case "50":
			s.P50 = d
		case "90":
			s.P90 = d
		case "99":
			s.P99 = d
		default:
			continue
		}
		found++
	}
	if found < 3 {
		return nil, fmt.Errorf("no latency distribution (--latency)")
	}
	if m = reMax.FindStringSubmatch(out); m != nil {
		s.Max = parseDur(m[1], m[2])
	}
	return s, nil
}
