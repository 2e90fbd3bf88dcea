package storetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/store"
)

// NewWithEndpoint is New that also returns the etcd client endpoint (unix://...), for
// tests that drive a command which connects by itself, such as the CLI with
// --etcd-endpoints.
func NewWithEndpoint(t testing.TB) (*store.Store, string) {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "fjord-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	sock := filepath.Join(dir, "etcd.sock")
	srv, err := etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(dir, "data"), ClientSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	endpoint := etcdserver.SocketEndpoint(sock)
	cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return store.New(cli, ""), endpoint
}
