package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fjord-net/fjord/internal/lab"
)

// ---------------------------------------------------------------------------------
// Memory of a real node

// nodeMem is one node's resident memory, MiB.
type nodeMem struct {
	Node                       string
	Containerd, Kubelet, Agent float64
	Shims                      int
	ShimsMiB                   float64 // PSS: the shims share their program's pages
	// Pods is the RSS the node's cgroup (every pod: fjord's agent, CoreDNS, pause
	// processes, the benchmark's pods) accounts.
	Pods float64
}

// nodeMemory finds each node's containerd, kubelet, shims (by the node's directory on
// their command lines) and fjord agent (by its cgroup, under the node's cgroup root).
func nodeMemory(c lab.Config) ([]nodeMem, error) {
	procs := cmdlines()
	var out []nodeMem
	for i := 1; i <= c.Nodes; i++ {
		m := nodeMem{Node: c.NodeName(i)}
		dir := c.DiskDir(i) + "/"
		for pid, cmd := range procs {
			switch {
			case strings.HasPrefix(cmd, "containerd --config "+dir):
				m.Containerd += rssMiB(pid)
			case strings.Contains(cmd, "/kubelet --config="+dir):
				m.Kubelet += rssMiB(pid)
			case strings.Contains(cmd, "containerd-shim-runc-v2 ") && strings.Contains(cmd, "-address "+dir):
				m.Shims++
				m.ShimsMiB += pssMiB(pid)
			case strings.HasPrefix(cmd, "/usr/local/bin/fjord agent ") && inCgroup(pid, c.CgroupRoot(i)+"/"):
				m.Agent += rssMiB(pid)
			}
		}
		if m.Containerd == 0 || m.Kubelet == 0 || m.Agent == 0 {
			return nil, fmt.Errorf("memory of %s: containerd, kubelet or fjord agent not found in /proc", m.Node)
		}
		m.Pods = cgroupRSS(c.CgroupRoot(i))
		out = append(out, m)
	}
	return out, nil
}

// rssMiB is VmRSS of a process in MiB (0 if gone).
func rssMiB(pid int) float64 { return procKB(pid, "status", "VmRSS:") / 1024 }

// pssMiB is the proportional set size of a process in MiB: pages shared with other
// processes counted in shares (0 if gone).
func pssMiB(pid int) float64 { return procKB(pid, "smaps_rollup", "Pss:") / 1024 }

// procKB reads a "Field: N kB" line of /proc/PID/file.
func procKB(pid int, file, field string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb
			}
		}
	}
	return 0
}

func inCgroup(pid int, root string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	return err == nil && strings.Contains(string(b), ":"+root)
}

// cgroupRSS reads the anonymous memory of a cgroup and its children: total_rss on
// cgroup v1, anon on v2; NaN if unreadable.
func cgroupRSS(root string) float64 {
	for _, f := range []struct{ path, key string }{
		{filepath.Join("/sys/fs/cgroup/memory", root, "memory.stat"), "total_rss"},
		{filepath.Join("/sys/fs/cgroup", root, "memory.stat"), "anon"},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, f.key+" "); ok {
				n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return n / (1 << 20)
			}
		}
	}
	return nan
}
