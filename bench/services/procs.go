package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------------
// Commands, files and /proc

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

const clockTicks = 100 // CLK_TCK on Linux

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// procStartBoot is the process's start, in seconds since boot (CLOCK_BOOTTIME).
func procStartBoot(pid int) (float64, error) {
	f := procStat(pid)
	if len(f) < 20 {
		return 0, fmt.Errorf("process %d: cannot read its start time", pid)
	}
	t, err := strconv.ParseFloat(f[19], 64) // field 22: starttime
	return t / clockTicks, err
}

// descendants returns the command lines of a process's live descendants.
func descendants(pid int) []string {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(p); len(f) > 2 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	var out []string
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); err == nil && len(cmd) > 0 {
				out = append(out, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
			walk(c)
		}
	}
	walk(pid)
	return out
}

// treeCPU is user+system time of the process, its waited-for children, and its live
// descendants (an `nft` or `iptables-restore` still running or exiting), in seconds.
func treeCPU(pid int) float64 {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(p); len(f) > 2 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	var sum float64
	seen := map[int]bool{}
	var walk func(int)
	walk = func(p int) {
		if seen[p] {
			return
		}
		seen[p] = true
		f := procStat(p)
		if len(f) < 15 {
			return
		}
		for _, k := range []int{11, 12, 13, 14} { // fields 14-17: utime stime cutime cstime
			v, _ := strconv.ParseFloat(f[k], 64)
			sum += v / clockTicks
		}
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return sum
}

func boottime() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// procStatus returns a /proc/PID/status field in MiB (NaN if absent).
func procStatus(pid int, field string) float64 {
	if pid == 0 {
		return math.NaN()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return math.NaN()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			if f := strings.Fields(v); len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return math.NaN()
}

// ---------------------------------------------------------------------------------
// Statistics

func minOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Min(v)
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}
