package kubebuild

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// goRunner runs the go command for a scratch module: fixed build settings, a
// lower CPU priority, and progress for long builds.
type goRunner struct {
	goBin     string
	nice      int
	logf      func(string, ...any)
	heartbeat time.Duration
}

// buildEnv is the environment every go command here runs with. It must stay
// the same for every build (and match any build made by hand with the same
// settings) so that the Go build cache is shared: static binaries
// (CGO_ENABLED=0; they also run inside images), no workspace, no VCS stamping,
// go.mod updated as needed.
func buildEnv(base []string) []string {
	set := map[string]string{
		"CGO_ENABLED": "0",
		"GOWORK":      "off",
		"GOFLAGS":     "-buildvcs=false -mod=mod",
	}
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	for _, k := range []string{"CGO_ENABLED", "GOWORK", "GOFLAGS"} {
		out = append(out, k+"="+set[k])
	}
	return out
}

// command prepares `go args...` in dir, in its own process group so that a
// cancelled build stops the compilers it started too.
func (g goRunner) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	name, argv := g.goBin, args
	if g.nice > 0 {
		if nice, err := exec.LookPath("nice"); err == nil {
			name, argv = nice, append([]string{"-n", fmt.Sprint(g.nice), g.goBin}, args...)
		}
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Dir = dir
	cmd.Env = buildEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// output runs a short go command and returns its stdout; an error carries the
// tail of its stderr.
func (g goRunner) output(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := g.command(ctx, dir, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, tail(stderr.String(), 4000))
	}
	return out, nil
}

// build runs a go command that builds what (targets, for messages).
func (g goRunner) build(ctx context.Context, dir, what string, args ...string) error {
	return g.long(ctx, dir, "building "+what, "built "+what, args...)
}

// long runs a go command that may take minutes, logging a heartbeat every
// g.heartbeat ("still DOING: ...") with the number of packages compiled so
// far (counted from -v output when args have -v), and DONE with the time
// taken at the end. An error carries the tail of go's stderr.
func (g goRunner) long(ctx context.Context, dir, doing, finished string, args ...string) error {
	counted := false
	for _, a := range args {
		counted = counted || a == "-v"
	}
	cmd := g.command(ctx, dir, args...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	var (
		mu  sync.Mutex
		out goOutput
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			mu.Lock()
			out.line(sc.Text())
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner: keep the pipe drained
	}()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		<-done
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	tick := time.NewTicker(g.heartbeat)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case err = <-waitErr:
			break loop
		case <-tick.C:
			mu.Lock()
			n := out.packages
			mu.Unlock()
			if !counted {
				n = -1
			}
			g.logf("%s", heartbeat(doing, n, time.Since(start)))
		}
	}
	pw.Close()
	<-done
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s: go %s (in %s): %w\n%s", doing, strings.Join(args, " "), dir, err, tail(out.tailText(), 4000))
	}
	if counted {
		g.logf("%s in %s (%s compiled)", finished, clock(time.Since(start)), packagesText(out.packages))
	} else {
		g.logf("%s in %s", finished, clock(time.Since(start)))
	}
	return nil
}

// tail returns about the last n bytes of s, starting at a line.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
