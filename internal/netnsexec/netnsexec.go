// Package netnsexec replaces the current process with a command running in another
// network namespace: the seed's `nsenter -t PID -n CMD` recipe, without nsenter.
//
// Network namespaces belong to threads. Exec pins the goroutine to its OS thread,
// switches that thread's namespace, then calls execve from the same thread, so the new
// program starts wholly inside the target namespace.
package netnsexec

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exec runs argv inside the network namespace at nsPath (for example /run/netns/NAME
// or /proc/PID/ns/net), replacing the current process. It returns only on error.
func Exec(nsPath string, argv []string, env []string) error {
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
	// Never unlocked: this thread's namespace changes and the process is replaced.
	runtime.LockOSThread()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		unix.Close(fd)
		return fmt.Errorf("enter network namespace %s: %w", nsPath, err)
	}
	unix.Close(fd)
	if env == nil {
		env = os.Environ()
	}
	return syscall.Exec(path, argv, env)
}
