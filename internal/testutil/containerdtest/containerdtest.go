// Package containerdtest starts a throwaway containerd for a test: its own
// directory (content, snapshots, state, socket, runc state), its own mount and
// network namespaces (so its mounts vanish with it and nothing it opens is
// reachable), and its containers in a cgroup of their own. Cleanup stops every
// process it started, removes the cgroups and the directory, and reports
// anything left behind, even when the test failed half-way.
package containerdtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/containerd"
)

// Namespace is the containerd namespace the helper works in: the one the
// kubelet's CRI plugin uses.
const Namespace = "k8s.io"

// Instance is a running throwaway containerd.
type Instance struct {
	Config containerd.Config
	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
	// cgroup is the parent cgroup of every container Run starts ("/fjord-ctrtest-<hex>").
	cgroup string
	seq    atomic.Int64
	mu     sync.Mutex
	ids    []string // containers started, for cleanup
}

// Require fails the test unless it can run: root, not -short, and containerd,
// ctr, runc and unshare installed.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts containerd; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Fatal("containerdtest needs root")
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "unshare", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (run scripts/install-deps.sh): %v", bin, err)
		}
	}
}

// Start starts containerd in a fresh directory and waits until it answers.
// The CRI plugin runs unless disableCRI (then it is a ctr-only instance).
func Start(t testing.TB, disableCRI bool) *Instance {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "fjord-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	in := &Instance{
		Config: containerd.Config{Dir: dir, DisableCRI: disableCRI},
		t:      t,
		log:    filepath.Join(dir, "containerd.log"),
		cgroup: "/fjord-ctrtest-" + hex.EncodeToString(b[:]),
		exited: make(chan struct{}),
	}
	t.Cleanup(in.cleanup)
	toml, err := in.Config.TOML()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{in.Config.Root(), in.Config.State(), in.Config.RuncRoot(), in.Config.CNIBinDir, in.Config.CNIConfDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(in.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// A private mount namespace: containerd's snapshot mounts and runc's
	// container mounts live and die there. A new network namespace (only lo):
	// the CRI stream server and anything else containerd opens are reachable
	// from nowhere. Not `ip netns exec`: it remounts /sys without the cgroup
	// mounts runc needs.
	in.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "--net", "containerd", "--config", cfgPath)
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = in.cmd.Wait(); close(in.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := in.Ctr("version"); err == nil {
			return in
		}
		select {
		case <-in.exited:
			t.Fatalf("containerd exited at start-up:\n%s", in.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 20s:\n%s", in.Config.Socket(), in.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (in *Instance) logTail() string {
	data, _ := os.ReadFile(in.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// Ctr runs `ctr -a SOCKET -n k8s.io ARGS...` and returns its combined output.
func (in *Instance) Ctr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"-a", in.Config.Socket(), "-n", Namespace}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Import loads an image tarball.
func (in *Instance) Import(tarball string) (string, error) {
	return in.Ctr("images", "import", tarball)
}

// Run runs a command in a new container of image and removes the container
// afterwards (`ctr run --rm`), returning the command's output. args[0] is the
// command; none runs the image's entrypoint and cmd.
func (in *Instance) Run(image string, args ...string) (string, error) {
	return in.Ctr(append(in.runArgs("--rm", image), args...)...)
}

// runArgs starts a `ctr run` command line for a new container: runc state,
// cgroup and stdio FIFOs all under this instance (ctr's FIFOs default to
// /run/containerd/fifo).
func (in *Instance) runArgs(mode, image string) []string {
	id := fmt.Sprintf("t%d", in.seq.Add(1))
	in.mu.Lock()
	in.ids = append(in.ids, id)
	in.mu.Unlock()
	return []string{"run", mode, "--runc-root", in.Config.RuncRoot(), "--cgroup", in.cgroup + "/" + id,
		"--fifo-dir", filepath.Join(in.Config.Dir, "fifo"), image, id}
}

// RunDetached starts a container of image that keeps running (`ctr run -d`)
// and returns its id; cleanup stops it.
func (in *Instance) RunDetached(image string, args ...string) (string, error) {
	ctrArgs := in.runArgs("-d", image)
	_, err := in.Ctr(append(ctrArgs, args...)...)
	return ctrArgs[len(ctrArgs)-1], err
}

// Cgroup is the cgroup path under which every container of this instance
// runs, in each hierarchy.
func (in *Instance) Cgroup() string { return in.cgroup }

// cleanup removes every trace: containers, shims, containerd, cgroups,
// mounts, the directory. It reports what it could not remove.
func (in *Instance) cleanup() {
	t := in.t
	dir := in.Config.Dir
	in.mu.Lock()
	ids := append([]string(nil), in.ids...)
	in.mu.Unlock()
	if in.cmd != nil && in.cmd.Process != nil {
		// The polite way first, so shims exit and remove their sockets.
		if out, err := in.Ctr("tasks", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = in.Ctr("tasks", "kill", "-s", "SIGKILL", id)
				_, _ = in.Ctr("tasks", "delete", "-f", id)
			}
		}
		if out, err := in.Ctr("containers", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = in.Ctr("containers", "delete", id)
				ids = append(ids, id)
			}
		}
	}
	// Whatever is still running in our cgroups or names our directory.
	for _, pid := range cgroupProcs(in.cgroup) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range procsMentioning(dir, in.pid()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
			<-in.exited
		}
	}
	var left []int
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = append(cgroupProcs(in.cgroup), procsMentioning(dir, 0)...)
		if len(left) == 0 || time.Now().After(end) {
			break
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if len(left) > 0 {
		t.Errorf("containerdtest: processes still running after cleanup: %v", left)
	}
	for _, d := range cgroupDirs(in.cgroup) {
		if err := removeCgroup(d); err != nil {
			t.Errorf("containerdtest: %v", err)
		}
	}
	for _, m := range mountsUnder(dir) {
		t.Errorf("containerdtest: mount %s leaked into the host mount namespace; unmounting it", m)
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	// A shim killed rather than stopped leaves its socket in /run/containerd/s.
	for _, id := range ids {
		if err := os.Remove(ShimSocket(in.Config.Socket(), Namespace, id)); err != nil && !os.IsNotExist(err) {
			t.Errorf("containerdtest: %v", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("containerdtest: %v", err)
	}
}

// ShimSocket is where containerd 1.6's runc shim for container id listens:
// /run/containerd/s/<sha256 of address/namespace/id>, whatever containerd's
// own state directory (containerd's runtime/v2/shim.SocketAddress).
func ShimSocket(address, namespace, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, namespace, id)))
	return filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:]))
}

// PID is containerd's process id.
func (in *Instance) PID() int { return in.pid() }

func (in *Instance) pid() int {
	if in.cmd == nil || in.cmd.Process == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

// procsMentioning lists processes (other than except) whose command line
// contains s: the shims of this instance carry its socket path.
func procsMentioning(s string, except int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupMounts lists the mount points of the cgroup hierarchies (v1 and v2).
func cgroupMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") && len(fields) > 4 {
				out = append(out, fields[4])
			}
		}
	}
	return out
}

// cgroupDirs lists the directories of cgroup path in every hierarchy that has it.
func cgroupDirs(path string) []string {
	var out []string
	for _, m := range cgroupMounts() {
		d := filepath.Join(m, path)
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// cgroupProcs lists the processes in cgroup path and below, in any hierarchy.
func cgroupProcs(path string) []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range cgroupDirs(path) {
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
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

// removeCgroup removes a cgroup directory and its children, deepest first
// (cgroup directories are removed with rmdir, never by deleting their files).
func removeCgroup(d string) error {
	var dirs []string
	_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		var err error
		for try := 0; try < 50; try++ {
			if err = syscall.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond) // the last process may still be exiting
		}
		if err != nil {
			return fmt.Errorf("rmdir %s: %w", dirs[i], err)
		}
	}
	return nil
}

// mountsUnder lists host mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append([]string{fields[4]}, out...)
		}
	}
	return out
}
