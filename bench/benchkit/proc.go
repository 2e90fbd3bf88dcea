package benchkit

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a process a benchmark started: in its own process group (signals reach
// what it starts too), killed with the benchmark if that dies, its output appended
// to a log file.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // path of its log
	done chan struct{}
}

// StartProc starts argv with stdout and stderr appended to logPath; setup, if not
// nil, adjusts the command first (environment, directory).
func StartProc(name, logPath string, setup func(*exec.Cmd), argv ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if setup != nil {
		setup(cmd)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID is the process's id (and its group's).
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Alive reports whether the process has not exited yet.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after grace (at once if grace is
// 0), and waits up to 10 s more for the process to exit.
func (p *Proc) Stop(grace time.Duration) {
	if p == nil || !p.Alive() {
		return
	}
	if grace > 0 {
		_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// LogTail returns the last n lines of the process's log, for error messages.
func (p *Proc) LogTail(n int) string {
	data, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
