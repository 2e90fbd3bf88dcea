// Package netnsexec replaces the current process with a command running in another
// network namespace: the seed's `nsenter -t PID -n CMD` recipe, without nsenter.
//
// Network namespaces belong to threads. Exec pins the goroutine to its OS thread,
// switches that thread's namespace, then calls execve from the same thread, so the new
// program starts wholly inside the target namespace.
//
// With Options.Sysfs it behaves like `ip netns exec`: the command also gets a private
// mount namespace in which /sys is a fresh sysfs mounted from inside the target network
// namespace (sysfs shows the interfaces of the namespace that mounted it), so
// /sys/class/net/eth0/mtu is the pod's, and /etc/netns/NAME/* is bind-mounted over /etc.
// Nothing of that is visible outside the command.
package netnsexec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options change how the command is started.
type Options struct {
	// Sysfs: private mount namespace with /sys remounted for the target namespace.
	Sysfs bool
}

// Exec runs argv inside the network namespace at nsPath (for example /run/netns/NAME
// or /proc/PID/ns/net), replacing the current process. It returns only on error.
func Exec(nsPath string, argv []string, env []string) error {
	return ExecWith(nsPath, argv, env, Options{})
}

// ExecWith is Exec with options.
func ExecWith(nsPath string, argv []string, env []string, opts Options) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command given")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		unix.Close(fd)
		return fmt.Errorf("%s is not a network namespace", nsPath)
	}
	// Never unlocked: this thread's namespaces change and the process is replaced.
	runtime.LockOSThread()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		unix.Close(fd)
		return fmt.Errorf("enter network namespace %s: %w", nsPath, err)
	}
	unix.Close(fd)
	if opts.Sysfs {
		if err := privateSysfs(nsPath); err != nil {
			return err
		}
	}
	if env == nil {
		env = os.Environ()
	}
	return syscall.Exec(path, argv, env)
}

// privateSysfs gives the calling thread its own mount namespace, in which nothing
// propagates back to the host, and mounts a sysfs for the thread's network namespace on
// /sys, as iproute2's netns_switch does.
func privateSysfs(nsPath string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("private mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount /sys: %w", err)
	}
	name := filepath.Base(nsPath)
	if err := unix.Mount(name, "/sys", "sysfs", 0, ""); err != nil {
		// A sysfs owned by another user namespace can only be mounted read-only.
		if err2 := unix.Mount(name, "/sys", "sysfs", unix.MS_RDONLY, ""); err2 != nil {
			return fmt.Errorf("mount sysfs for %s: %w", nsPath, err)
		}
	}
	if strings.HasPrefix(nsPath, "/run/netns/") || strings.HasPrefix(nsPath, "/var/run/netns/") {
		bindEtc(name)
	}
	return nil
}

// bindEtc bind-mounts /etc/netns/NAME/X over /etc/X for every X there (per-namespace
// resolv.conf and the like), as `ip netns exec` does. Missing targets are skipped.
func bindEtc(name string) {
	dir := filepath.Join("/etc/netns", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join("/etc", e.Name())
		if _, err := os.Stat(dst); err != nil {
			continue
		}
		_ = unix.Mount(src, dst, "none", unix.MS_BIND, "")
	}
}
