package kubebuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeGo writes a script that plays the go command: it prints package names
// on stderr as `go build -v` does, pauses, and fails when asked to.
func fakeGo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "go")
	script := `#!/bin/sh
for p in k8s.io/a k8s.io/b k8s.io/c; do echo $p >&2; done
sleep 1
if [ "$1" = fail ]; then
  echo "# k8s.io/c" >&2
  echo "c/c.go:3:2: undefined: nope" >&2
  exit 1
fi
echo k8s.io/d >&2
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBuildReportsProgressAndErrors(t *testing.T) {
	rec := &logRecorder{t: t}
	g := goRunner{goBin: fakeGo(t), nice: -1, logf: rec.logf, heartbeat: 100 * time.Millisecond}
	ctx := context.Background()

	if err := g.build(ctx, t.TempDir(), "kubelet, kubectl", "build", "-v", "./..."); err != nil {
		t.Fatal(err)
	}
	if rec.count("still building kubelet, kubectl: 3 packages compiled, ") == 0 {
		t.Errorf("no heartbeat with the package count while the build ran: %q", rec.lines)
	}
	if rec.count("built kubelet, kubectl in ") != 1 || !strings.HasSuffix(rec.lines[len(rec.lines)-1], "(4 packages compiled)") {
		t.Errorf("last line = %q, want the final count of 4", rec.lines[len(rec.lines)-1])
	}

	err := g.build(ctx, t.TempDir(), "e2e.test", "fail", "-v")
	if err == nil {
		t.Fatal("a failing build returned no error")
	}
	for _, want := range []string{"building e2e.test", "c/c.go:3:2: undefined: nope", "# k8s.io/c"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q (the tail of go's stderr):\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "k8s.io/a\n") {
		t.Errorf("error repeats the package list:\n%v", err)
	}

	// Without -v there is no count to report.
	rec.lines = nil
	if err := g.build(ctx, t.TempDir(), "e2e.test", "test", "-c"); err != nil {
		t.Fatal(err)
	}
	if rec.count("still building e2e.test: ") == 0 || rec.count("still building e2e.test: 0 packages") != 0 {
		t.Errorf("heartbeat without -v: %q", rec.lines)
	}
}

func TestBuildStopsWithContext(t *testing.T) {
	rec := &logRecorder{t: t}
	g := goRunner{goBin: fakeGo(t), nice: -1, logf: rec.logf, heartbeat: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	err := g.build(ctx, t.TempDir(), "kubelet", "build", "-v")
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled build: %v, want context canceled", err)
	}
}
