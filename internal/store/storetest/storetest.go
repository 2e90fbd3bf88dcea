// Package storetest starts a throwaway embedded etcd for tests and returns a Store on it.
package storetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/testutil/stallnet"
)

// Env is a running test store.
type Env struct {
	Store    *store.Store
	Server   *etcdserver.Server
	Endpoint string // unix:///... client URL, for commands under test

	t   testing.TB
	cfg etcdserver.Config
}

// New starts an embedded etcd in a temporary directory and returns a Store connected to
// it over its unix socket. Everything is removed when the test ends.
func New(t testing.TB) *store.Store { return Start(t).Store }

// Start is New, also returning the server (to stop it: a store outage) and endpoint.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, Options{})
}

// Options tune the test server.
type Options struct {
	// MaxTxnOps is the server's --max-txn-ops; 0 means etcdserver's default.
	MaxTxnOps uint
}

// StartWith is Start with a server configured by opts.
func StartWith(t testing.TB, opts Options) *Env {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "fjord-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	sock := filepath.Join(dir, "etcd.sock")
	env := &Env{t: t, cfg: etcdserver.Config{DataDir: filepath.Join(dir, "data"), ClientSocket: sock, MaxTxnOps: opts.MaxTxnOps}, Endpoint: etcdserver.SocketEndpoint(sock)}
	env.StartServer()
	cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{env.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	env.Store = store.New(cli, "")
	return env
}

// StartServer starts the member (again, after Server.Close: same data, same socket;
// connected clients reconnect) and sets Server.
func (e *Env) StartServer() {
	e.t.Helper()
	srv, err := etcdserver.Start(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(srv.Close)
	e.Server = srv
}

// Stalled returns another Store on the same server, reached through a link that can be
// held (stallnet): what a node sees when its way to etcd stalls. The client is closed
// when the test ends.
func (e *Env) Stalled(t testing.TB) (*store.Store, *stallnet.Link) {
	t.Helper()
	link := stallnet.New(t, strings.TrimPrefix(e.Endpoint, "unix://"))
	cli, err := store.Connect(context.Background(), store.ClientConfig{Endpoints: []string{link.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return store.New(cli, ""), link
}
