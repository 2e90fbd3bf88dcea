package etcdserver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func start(t *testing.T) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an etcd member")
	}
	dir, err := os.MkdirTemp("", "fjord-etcd-fatal-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := Start(context.Background(), Config{DataDir: filepath.Join(dir, "data"), ClientSocket: filepath.Join(dir, "etcd.sock")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// A member that stops on its own is reported, so the process that embeds it can stop
// too (the agent exits non-zero) instead of running on a store that is gone.
func TestFatalWhenTheServerStopsOnItsOwn(t *testing.T) {
	s := start(t)
	fatal := s.Fatal()
	s.e.Server.HardStop()
	select {
	case err := <-fatal:
		if err == nil {
			t.Fatal("nil error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stopped server was not reported")
	}
}

func TestNoFatalAfterClose(t *testing.T) {
	s := start(t)
	fatal := s.Fatal()
	s.Close()
	select {
	case err := <-fatal:
		t.Fatalf("Close reported as fatal: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}
