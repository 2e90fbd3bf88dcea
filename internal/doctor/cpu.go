package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is one snapshot of the machine's and every process's CPU time.
type cpuSample struct {
	at    time.Time
	stat  map[string]CPUTimes
	procs map[int]ProcCPU
	netns map[int]uint64 // pid -> inode of its network namespace
}

func takeSample(proc string) (cpuSample, error) {
	s := cpuSample{at: time.Now(), procs: map[int]ProcCPU{}, netns: map[int]uint64{}}
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return s, err
	}
	if s.stat, err = ParseProcStat(string(b)); err != nil {
		return s, err
	}
	entries, _ := os.ReadDir(proc)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		p, err := ParsePIDStat(string(b))
		if err != nil {
			continue
		}
		s.procs[pid] = p
		if ino, ok := nsInode(filepath.Join(proc, e.Name(), "ns", "net")); ok {
			s.netns[pid] = ino
		}
	}
	return s, nil
}

func nsInode(path string) (uint64, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ino, true
}

// ProcUse is a process's share of one CPU over the window.
type ProcUse struct {
	PID     int
	Name    string
	Percent float64
}

// busyIn lists the processes of network namespace ino by CPU use over the window.
func busyIn(a, b cpuSample, ino uint64, proc string) []ProcUse {
	ticks := float64(clockTicks) * b.at.Sub(a.at).Seconds()
	if ticks <= 0 {
		return nil
	}
	var out []ProcUse
	for pid, p := range b.procs {
		q, ok := a.procs[pid]
		if !ok || b.netns[pid] != ino || p.Ticks < q.Ticks {
			continue
		}
		out = append(out, ProcUse{PID: pid, Name: cmdline(proc, pid, p.Comm), Percent: 100 * float64(p.Ticks-q.Ticks) / ticks})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Percent > out[j].Percent })
	return out
}

// clockTicks is USER_HZ, 100 on every Linux architecture fjord runs on.
const clockTicks = 100

func cmdline(proc string, pid int, comm string) string {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return comm
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

// busyLimit is the share of one CPU above which a process in a node's namespace is
// called a noisy neighbour (fjord's own agent uses about 1% at rest).
const busyLimit = 25

// judgeNodeCPU flags a process in the node's namespace that keeps a CPU busy.
func judgeNodeCPU(c *checks, node string, busy []ProcUse, window time.Duration) {
	if len(busy) > 0 && busy[0].Percent >= busyLimit {
		top := busy[0]
		c.add("cpu", Warn, fmt.Sprintf("noisy neighbour: pid %d (%s) used %.0f%% of a CPU in %s's namespace over %v; it competes with the node's packet processing (softirq), which shows as jitter and drops under load",
			top.PID, top.Name, top.Percent, node, window),
			"find out what it is (ps -p PID -o args); move it elsewhere or cap it (cgroup cpu.max)")
		return
	}
	top := "nothing running"
	if len(busy) > 0 {
		top = fmt.Sprintf("busiest: %s %.0f%%", busy[0].Name, busy[0].Percent)
	}
	c.pass("cpu", "no process in the node's namespace used %d%% of a CPU or more (%s)", busyLimit, top)
}

// judgeMachineCPU checks steal and softirq time over the window (cluster scope: in a
// lab every node shares this machine's CPUs).
func judgeMachineCPU(c *checks, a, b cpuSample, psi float64) {
	shares := Shares(a.stat, b.stat)
	sort.Slice(shares, func(i, j int) bool { return shares[i].Name < shares[j].Name })
	var total CPUShare
	worstSoft := CPUShare{}
	for _, s := range shares {
		if s.Name == "cpu" {
			total = s
		} else if s.SoftIRQ > worstSoft.SoftIRQ {
			worstSoft = s
		}
	}
	ev := fmt.Sprintf("over %v: busy %.0f%%, steal %.1f%%, softirq %.1f%% (worst CPU %s %.1f%%), iowait %.1f%%",
		b.at.Sub(a.at).Round(10*time.Millisecond), total.Busy, total.Steal, total.SoftIRQ, worstSoft.Name, worstSoft.SoftIRQ, total.IOWait)
	if psi >= 0 {
		ev += fmt.Sprintf("; CPU pressure (PSI some avg10) %.0f%%", psi)
	}
	switch {
	case total.Steal >= 10:
		c.add("cpu", Warn, "the hypervisor steals CPU from this machine ("+ev+"): encapsulation and proxying stall while it does", "move to a host with dedicated CPUs, or find the neighbour")
	case worstSoft.SoftIRQ >= 30:
		c.add("cpu", Warn, "softirq (packet processing) saturates a CPU ("+ev+")", "spread interrupts (RPS/RSS), or add CPUs")
	default:
		c.pass("cpu", "%s", ev)
	}
}
