package kubebuild

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// logRecorder collects progress lines.
type logRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := strings.TrimSpace(strings.ReplaceAll(sprintf(format, args...), "\n", " | "))
	r.lines = append(r.lines, line)
	r.t.Log(line)
}

func (r *logRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestEnsureBuildsOnceAndReuses builds two small targets for real, in a fresh
// cache directory, from two goroutines at once: the lock makes one build and
// the other find them current; a third call builds nothing. It needs the Go
// module proxy (or a warm module cache) and takes about half a minute with a
// warm Go build cache.
func TestEnsureBuildsOnceAndReuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds from the k8s.io/kubernetes module (network, go build)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rec := &logRecorder{t: t}
	cfg := Config{CacheDir: t.TempDir(), Logf: rec.logf, Heartbeat: 2 * time.Second}

	var wg sync.WaitGroup
	results := make([]Binaries, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Ensure(ctx, cfg, RegressionIssue74839, Ginkgo)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Ensure #%d: %v", i, err)
		}
	}
	if results[0] != results[1] {
		t.Fatalf("two callers got different binaries: %+v, %+v", results[0], results[1])
	}
	if n := rec.count("building regression-issue-74839, ginkgo (Kubernetes v1.37.2)"); n != 1 {
		t.Errorf("%d build announcements, want exactly 1 (the other caller waits for the lock)", n)
	}
	if rec.count("waiting for another process building") != 1 {
		t.Error("the second caller did not say it waited for the lock")
	}
	if rec.count("built regression-issue-74839, ginkgo in ") != 1 {
		t.Error("no final 'built ... in ... (N packages compiled)' line")
	}
	out, err := exec.Command(results[0].Path(Ginkgo), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "Ginkgo Version 2.") {
		t.Errorf("ginkgo version: %q, %v", out, err)
	}

	before := len(rec.lines)
	if _, err := Ensure(ctx, cfg, Ginkgo); err != nil {
		t.Fatal(err)
	}
	if len(rec.lines) != before {
		t.Errorf("a current target was rebuilt or announced: %q", rec.lines[before:])
	}

	// A target replaced by hand is no longer current.
	if err := exec.Command("cp", "/bin/true", results[0].Path(Ginkgo)).Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(ctx, cfg, Ginkgo); err != nil {
		t.Fatal(err)
	}
	if rec.count("building ginkgo (Kubernetes v1.37.2)") != 1 {
		t.Error("a replaced ginkgo binary was not rebuilt")
	}
}

// TestProgram builds a tiny program for real, then finds it current.
func TestProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	rec := &logRecorder{t: t}
	cfg := Config{CacheDir: t.TempDir(), Logf: rec.logf}
	src := map[string][]byte{"main.go": []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi from a program\") }\n")}
	bin, err := Program(context.Background(), cfg, "hello", src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "hi from a program\n" {
		t.Fatalf("%s: %q, %v", bin, out, err)
	}
	if rec.count("hello ready in ") != 1 {
		t.Errorf("no build reported: %q", rec.lines)
	}
	again, err := Program(context.Background(), cfg, "hello", src)
	if err != nil || again != bin || rec.count("hello ready in ") != 1 {
		t.Errorf("second call: %s, %v; rebuilt: %q", again, err, rec.lines)
	}
	for _, bad := range []string{"Hello", "../x", ""} {
		if _, err := Program(context.Background(), cfg, bad, src); err == nil {
			t.Errorf("program name %q accepted", bad)
		}
	}
	if _, err := Program(context.Background(), cfg, "x", map[string][]byte{"../main.go": nil}); err == nil {
		t.Error("file name ../main.go accepted")
	}
}
