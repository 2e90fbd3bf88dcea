// Package storetest starts a throwaway embedded etcd for tests and returns a Store on it.
package storetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/store"
)

// New starts an embedded etcd in a temporary directory and returns a Store connected to
// it over its unix socket. Everything is removed when the test ends.
func New(t testing.TB) *store.Store {
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
	cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{etcdserver.SocketEndpoint(sock)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return store.New(cli, "")
}
