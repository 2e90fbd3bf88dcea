package doctor

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// CPUTimes are one line of /proc/stat, in clock ticks.
type CPUTimes struct {
	Name                                           string
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ uint64
	Steal, Guest, GuestNice                        uint64
}

// Total is every tick counted (guest time is already inside user and nice).
func (c CPUTimes) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// ParseProcStat reads the cpu lines of /proc/stat ("cpu" is the sum of all CPUs).
func ParseProcStat(s string) (map[string]CPUTimes, error) {
	out := map[string]CPUTimes{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		v := make([]uint64, 10)
		for i := 1; i < len(f) && i <= 10; i++ {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat %s field %d: %w", f[0], i, err)
			}
			v[i-1] = n
		}
		out[f[0]] = CPUTimes{Name: f[0], User: v[0], Nice: v[1], System: v[2], Idle: v[3], IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7], Guest: v[8], GuestNice: v[9]}
	}
	if _, ok := out["cpu"]; !ok {
		return nil, fmt.Errorf("/proc/stat has no cpu line")
	}
	return out, nil
}

// CPUShare is how a CPU's time was spent over a window, in percent.
type CPUShare struct {
	Name                                 string
	Busy, SoftIRQ, Steal, IOWait, System float64
}

// Shares compares two /proc/stat samples.
func Shares(before, after map[string]CPUTimes) []CPUShare {
	var out []CPUShare
	for name, a := range after {
		b, ok := before[name]
		if !ok {
			continue
		}
		total := float64(a.Total() - b.Total())
		if a.Total() < b.Total() || total == 0 {
			continue
		}
		pct := func(x, y uint64) float64 { return 100 * float64(x-y) / total }
		out = append(out, CPUShare{Name: name,
			Busy:    100 - pct(a.Idle+a.IOWait, b.Idle+b.IOWait),
			SoftIRQ: pct(a.SoftIRQ, b.SoftIRQ), Steal: pct(a.Steal, b.Steal), IOWait: pct(a.IOWait, b.IOWait), System: pct(a.System, b.System)})
	}
	return out
}

// ProcCPU is a process's name and CPU ticks from /proc/PID/stat.
type ProcCPU struct {
	PID   int
	Comm  string
	Ticks uint64 // utime + stime
}

// ParsePIDStat reads /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func ParsePIDStat(s string) (ProcCPU, error) {
	open, closeP := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeP < open {
		return ProcCPU{}, fmt.Errorf("/proc/PID/stat: no command name")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return ProcCPU{}, fmt.Errorf("/proc/PID/stat: pid: %w", err)
	}
	f := strings.Fields(s[closeP+1:])
	// After the name: state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return ProcCPU{}, fmt.Errorf("/proc/PID/stat: %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ProcCPU{}, fmt.Errorf("/proc/PID/stat: utime/stime are not numbers")
	}
	return ProcCPU{PID: pid, Comm: s[open+1 : closeP], Ticks: u + st}, nil
}

// ParsePSI reads the "some avg10" of a /proc/pressure file (-1 when absent).
func ParsePSI(s string) float64 {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "avg10="); ok {
				if x, err := strconv.ParseFloat(v, 64); err == nil {
					return x
				}
			}
		}
	}
	return -1
}

// SNMP is /proc/net/snmp: counters by "Proto.Name" (Ip.FragFails, Tcp.RetransSegs...).
type SNMP map[string]int64

// ParseSNMP reads /proc/net/snmp (pairs of header and value lines per protocol).
func ParseSNMP(s string) (SNMP, error) {
	out := SNMP{}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(h) == 0 || len(h) != len(v) || h[0] != v[0] || !strings.HasSuffix(h[0], ":") {
			return nil, fmt.Errorf("/proc/net/snmp: lines %d-%d do not pair up", i+1, i+2)
		}
		proto := strings.TrimSuffix(h[0], ":")
		for k := 1; k < len(h); k++ {
			n, err := strconv.ParseInt(v[k], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/snmp %s.%s: %w", proto, h[k], err)
			}
			out[proto+"."+h[k]] = n
		}
	}
	return out, nil
}
