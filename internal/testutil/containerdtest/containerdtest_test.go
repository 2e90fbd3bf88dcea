package containerdtest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fjord-net/fjord/internal/ociimage"
	"github.com/fjord-net/fjord/internal/testutil/containerdtest"
)

// TestCleanupRemovesEverything leaves a container running when its subtest
// ends, as a failing test would, with containerd alive or killed, and checks
// that cleanup removed every process, cgroup, mount and file.
func TestCleanupRemovesEverything(t *testing.T) {
	containerdtest.Require(t)
	img := filepath.Join(t.TempDir(), "sleep.tar")
	if _, err := ociimage.Write(img, ociimage.Spec{
		Tags:       []string{"fjord.test/sleeper:1"},
		Files:      []ociimage.File{{Src: "/bin/busybox", Dst: "/bin/busybox"}},
		Entrypoint: []string{"/bin/busybox", "sleep", "600"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, killContainerd := range []bool{false, true} {
		var dir, socket, cgroup, id string
		var pid int
		t.Run(fmt.Sprintf("containerd killed %v", killContainerd), func(t *testing.T) {
			in := containerdtest.Start(t, false)
			dir, socket, cgroup = in.Config.Dir, in.Config.Socket(), in.Cgroup()
			if _, err := in.Import(img); err != nil {
				t.Fatal(err)
			}
			var err error
			id, err = in.RunDetached("fjord.test/sleeper:1")
			if err != nil {
				t.Fatal(err)
			}
			out, err := in.Ctr("tasks", "ls")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[0] == id && f[2] == "RUNNING" {
					pid, _ = strconv.Atoi(f[1])
				}
			}
			if pid == 0 {
				t.Fatalf("container %s is not running:\n%s", id, out)
			}
			if _, err := os.Stat(containerdtest.ShimSocket(socket, containerdtest.Namespace, id)); err != nil {
				t.Errorf("the shim's socket is not where ShimSocket says: %v", err)
			}
			if killContainerd {
				if err := syscall.Kill(in.PID(), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		})
		if dir == "" {
			t.Fatal("the subtest did not start containerd")
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after cleanup (%v)", dir, err)
		}
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			if err == nil && strings.Contains(string(cmdline), socket) {
				t.Errorf("process %s still runs: %q", p.Name(), cmdline)
			}
		}
		if _, err := os.Stat(containerdtest.ShimSocket(socket, containerdtest.Namespace, id)); !os.IsNotExist(err) {
			t.Errorf("the shim's socket remains (%v)", err)
		}
		if running(pid) {
			t.Errorf("the container's process %d still runs", pid)
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mounts), dir) {
			t.Errorf("mounts under %s remain:\n%s", dir, mounts)
		}
		for _, h := range []string{"memory", "pids", "cpu", "freezer", "unified"} {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, cgroup)); !os.IsNotExist(err) {
				t.Errorf("cgroup %s remains in %s (%v)", cgroup, h, err)
			}
		}
	}
}

// running reports whether pid is a live process: it exists and is not a
// zombie waiting for its (re)parent to reap it.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
