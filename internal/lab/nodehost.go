package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A node with a real kubelet needs more of its own than a network namespace: the
// kubelet and containerd expect a machine. Each such node gets
//   - a directory on disk (DiskDir) for containerd's images and snapshots, the
//     kubelet's state and pod logs;
//   - a private mount namespace, persisted at <node>/mntns, that containerd, the
//     kubelet and every container of the node share (the kubelet's volume mounts
//     must be visible to runc), in which:
//       /sys is the node's sysfs (its own interfaces) with the host's cgroups;
//       the three sysctls the kubelet insists on writing (vm.overcommit_memory,
//       kernel.panic, kernel.panic_on_oops) are masked by files holding the values
//       it wants, so it writes nothing to the host;
//       /etc/cni/net.d, /opt/cni/bin, /var/lib/cni, /run/fjord and /run/containerd
//       are the node's own, so fjord's DaemonSet installs its CNI plugin and config
//       per node exactly where a real node keeps them;
//   - its own cgroup root (/fjord-<lab>-<node>) in every hierarchy, so kubelets do
//     not share /kubepods.
// All of it is found and removed by Down, even after a kill -9 of everything.

// DiskRoot holds the lab's per-node directories on disk (containerd's images are too
// big for /run).
func (c Config) DiskRoot() string { return filepath.Join("/var/lib/fjord/labs", c.Name) }

// DiskDir is node i's directory on disk.
func (c Config) DiskDir(i int) string { return filepath.Join(c.DiskRoot(), c.NodeName(i)) }

func (c Config) mntnsPath(i int) string { return filepath.Join(c.DiskDir(i), "mntns") }

// CgroupRoot is node i's cgroup parent (the kubelet's cgroupRoot).
func (c Config) CgroupRoot(i int) string { return "/" + c.NodeNS(i) }

// privateDirs are the host paths each node sees its own copy of; the host gets
// empty mount points where they are missing, recorded and removed by Down.
var privateDirs = []string{"/etc/cni/net.d", "/opt/cni/bin", "/var/lib/cni", "/run/fjord", "/run/containerd"}

// kubeletSysctls are the values the kubelet writes unless they already hold.
var kubeletSysctls = map[string]string{"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}

func (c Config) hostDirsRecord() string { return filepath.Join(c.DiskRoot(), "created-host-dirs") }

// ensureHostDirs creates the missing mount points and records them.
func (c Config) ensureHostDirs() error {
	if err := os.MkdirAll(c.DiskRoot(), 0o755); err != nil {
		return err
	}
	var created []string
	for _, d := range privateDirs {
		// Record every missing ancestor, deepest last, so Down removes them all.
		var missing []string
		for p := d; p != "/"; p = filepath.Dir(p) {
			if _, err := os.Stat(p); err == nil {
				break
			}
			missing = append([]string{p}, missing...)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		created = append(created, missing...)
	}
	old, _ := os.ReadFile(c.hostDirsRecord())
	return os.WriteFile(c.hostDirsRecord(), append(old, []byte(strings.Join(created, "\n")+"\n")...), 0o644)
}

// cgroupHierarchies lists the cgroup mounts a node's root is made in: every v1
// hierarchy, or the unified hierarchy on a pure cgroup v2 host.
func cgroupHierarchies() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var out []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		if e.IsDir() && e.Name() != "unified" {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// buildNodeHost makes node i's disk directory, mount namespace and cgroup root.
func (c Config) buildNodeHost(i int) error {
	dir := c.DiskDir(i)
	for _, d := range []string{"sysctl", "cni/net.d", "cni/bin", "cni/lib", "run-fjord", "run-containerd", "cgroup-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for name, v := range kubeletSysctls {
		if err := os.WriteFile(filepath.Join(dir, "sysctl", filepath.Base(name)), []byte(v+"\n"), 0o644); err != nil {
			return err
		}
	}
	for _, h := range cgroupHierarchies() {
		cg := filepath.Join(h, c.CgroupRoot(i))
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", cg, err)
		}
		if filepath.Base(h) == "cpuset" { // a v1 cpuset child starts with no CPUs
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
					_ = os.WriteFile(filepath.Join(cg, f), b, 0o644)
				}
			}
		}
	}
	if err := os.WriteFile(c.mntnsPath(i), nil, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("unshare", "--mount="+c.mntnsPath(i), "--propagation", "private", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("node %d mount namespace: %w: %s", i, err, out)
	}
	var script strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&script, "set -e\nmount --rbind /sys/fs/cgroup %s\numount -l /sys\nmount -t sysfs sysfs /sys\nmount --rbind %s /sys/fs/cgroup\numount -l %s\n",
		q(filepath.Join(dir, "cgroup-tmp")), q(filepath.Join(dir, "cgroup-tmp")), q(filepath.Join(dir, "cgroup-tmp")))
	for name := range kubeletSysctls {
		fmt.Fprintf(&script, "mount --bind %s %s\n", q(filepath.Join(dir, "sysctl", filepath.Base(name))), q("/proc/sys/"+name))
	}
	// A node forwards (kubeadm requires it); fjord's agent runs in a container that
	// cannot write sysctls.
	script.WriteString("echo 1 > /proc/sys/net/ipv4/ip_forward\n")
	for _, m := range [][2]string{{"cni/net.d", "/etc/cni/net.d"}, {"cni/bin", "/opt/cni/bin"}, {"cni/lib", "/var/lib/cni"},
		{"run-fjord", "/run/fjord"}, {"run-containerd", "/run/containerd"}} {
		fmt.Fprintf(&script, "mount --bind %s %s\n", q(filepath.Join(dir, m[0])), q(m[1]))
	}
	cmd := exec.Command("nsenter", "--mount="+c.mntnsPath(i), "--net="+c.nodeNSPath(i), "sh", "-c", script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node %d mounts: %w: %s", i, err, out)
	}
	return nil
}

// spawnInNode starts a program inside node i's network and mount namespaces.
func (c Config) spawnInNode(name string, i int, exe string, args ...string) (int, error) {
	return c.spawnExec(name, "", "nsenter", append([]string{"--mount=" + c.mntnsPath(i), "--net=" + c.nodeNSPath(i), "--", exe}, args...)...)
}

// nodeCgroupPIDs lists every process in node i's cgroups: containers, shims, pause.
func (c Config) nodeCgroupPIDs(i int) []int {
	seen := map[int]bool{}
	var out []int
	for _, h := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(h, c.CgroupRoot(i)), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// removeNodeHosts kills what runs in the nodes' cgroups, and removes the cgroups,
// mount namespaces, disk directories and the host mount points the lab created.
func (c Config) removeNodeHosts() error {
	if _, err := os.Stat(c.DiskRoot()); err != nil {
		return nil
	}
	var errs []error
	nodes := c.Nodes
	if nodes == 0 { // config lost: take what is on disk
		entries, _ := os.ReadDir(c.DiskRoot())
		nodes = len(entries)
	}
	// containerd, its shims and kubelets name their node's directory on their
	// command line.
	for try := 0; try < 50; try++ {
		pids := pidsWithArg(c.DiskRoot() + "/")
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 1; i <= max(nodes, 50); i++ {
		if _, err := os.Stat(c.DiskDir(i)); err != nil && i > nodes {
			break
		}
		for try := 0; try < 50; try++ {
			pids := c.nodeCgroupPIDs(i)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, h := range cgroupHierarchies() {
			if err := removeCgroupTree(filepath.Join(h, c.CgroupRoot(i))); err != nil {
				errs = append(errs, err)
			}
		}
		if err := unix.Unmount(c.mntnsPath(i), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", c.mntnsPath(i), err))
		}
	}
	c.removeHostDirs()
	// Snapshots and container rootfs were mounted in the (now gone) node
	// namespaces only; what is left is plain files.
	if err := os.RemoveAll(c.DiskRoot()); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(filepath.Dir(c.DiskRoot())) // /var/lib/fjord/labs, if now empty
	return errors.Join(errs...)
}

// removeHostDirs removes the empty mount points the lab created on the host, deepest
// first; a directory someone put something in stays.
func (c Config) removeHostDirs() {
	b, err := os.ReadFile(c.hostDirsRecord())
	if err != nil {
		return
	}
	lines := strings.Fields(string(b))
	for i := len(lines) - 1; i >= 0; i-- {
		_ = os.Remove(lines[i])
	}
}

// removeCgroupTree removes a cgroup and its children, deepest first.
func removeCgroupTree(root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 20; try++ {
			if last = syscall.Rmdir(dirs[i]); last == nil || errors.Is(last, syscall.ENOENT) {
				last = nil
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if last != nil {
		return fmt.Errorf("cgroup %s: %w", root, last)
	}
	return nil
}

// nodeHostLeftovers reports what removeNodeHosts would still find (for tests).
func (c Config) nodeHostLeftovers() []string {
	var out []string
	if _, err := os.Stat(c.DiskRoot()); err == nil {
		out = append(out, c.DiskRoot())
	}
	for _, h := range cgroupHierarchies() {
		entries, _ := os.ReadDir(h)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), c.Prefix()+"-") {
				out = append(out, filepath.Join(h, e.Name()))
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(b, []byte(c.DiskRoot())) {
		out = append(out, "mounts under "+c.DiskRoot())
	}
	return out
}

// pidsWithArg lists the processes whose command line contains s.
func pidsWithArg(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}
