package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerEnv is set on every process the lab starts (and inherited by pod processes),
// so Down finds them through /proc even when the state directory is gone.
const markerEnv = "FJORD_LAB"

// spawn starts a long-running fjord process of the lab, detached from the caller's
// session, with its output in the lab's log directory. netnsPath "" runs it in the
// root namespace.
func (c Config) spawn(name, netnsPath string, args ...string) (int, error) {
	return c.spawnExec(name, netnsPath, c.Binary, args...)
}

// spawnExec is spawn for any executable (kube-apiserver, ...): in a namespace it runs
// under `fjord netns-exec`, and it carries the lab's marker either way.
func (c Config) spawnExec(name, netnsPath, exe string, args ...string) (int, error) {
	if err := os.MkdirAll(c.LogDir(), 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(c.LogDir(), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, args...)
	if netnsPath != "" {
		cmd = exec.Command(c.Binary, append([]string{"netns-exec", netnsPath, "--", exe}, args...)...)
	}
	cmd.Env = append(os.Environ(), markerEnv+"="+c.Name, "FJORD_LAB_PROC="+name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	pidDir := filepath.Join(c.StateDir(), "pids")
	_ = os.MkdirAll(pidDir, 0o755)
	_ = os.WriteFile(filepath.Join(pidDir, name+".pid"), []byte(strconv.Itoa(pid)), 0o644)
	return pid, nil
}

// labProcesses finds every live process carrying this lab's marker, by name.
func (c Config) labProcesses() map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	want := []byte(markerEnv + "=" + c.Name + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(env, 0), want) {
			continue
		}
		out[pid] = procName(env)
	}
	return out
}

func procName(env []byte) string {
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "FJORD_POD="); ok {
			return "pod " + v
		}
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "FJORD_LAB_PROC="); ok {
			return v
		}
	}
	return "?"
}

// stopProcesses sends SIGTERM to every lab process, waits a little, then SIGKILLs what
// is left. It returns the number of processes it found.
func (c Config) stopProcesses() int {
	procs := c.labProcesses()
	for pid := range procs {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && len(c.labProcesses()) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	for pid := range c.labProcesses() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := 0; i < 100 && len(c.labProcesses()) > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return len(procs)
}
