// Package etcdserver runs fjord's embedded single-member etcd: the default store, so one
// machine needs nothing else. Clients reach it over a unix socket, which every network
// namespace on the machine can open (a namespace cannot reach the host's loopback), and
// which only its owner may connect to: it is created owner-only (srwx------).
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config says where the embedded member keeps its data and listens.
type Config struct {
	// DataDir holds the member's WAL and snapshots.
	DataDir string
	// ClientSocket is the unix socket clients connect to.
	ClientSocket string
	// MaxTxnOps bounds the objects one `fjord apply` can write atomically.
	MaxTxnOps uint
}

// Server is a running embedded etcd member.
type Server struct {
	e       *embed.Etcd
	once    sync.Once
	closing atomic.Bool
}

// SocketEndpoint returns the client endpoint URL for a unix socket path.
func SocketEndpoint(path string) string { return "unix://" + path }

// Start launches the member and waits until it serves clients.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" || cfg.ClientSocket == "" {
		return nil, errors.New("etcd: data dir and client socket are required")
	}
	if len(cfg.ClientSocket) > 100 {
		return nil, fmt.Errorf("etcd: client socket path %q is too long for a unix socket (max ~100 bytes)", cfg.ClientSocket)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.ClientSocket), 0o755); err != nil {
		return nil, err
	}
	// A socket file left by a killed member would make listen fail with EADDRINUSE.
	_ = os.Remove(cfg.ClientSocket)
	peerSocket := filepath.Join(cfg.DataDir, "peer.sock")
	_ = os.Remove(peerSocket)

	ec := embed.NewConfig()
	ec.Name = "fjord"
	ec.Dir = cfg.DataDir
	ec.LogLevel = "error"
	ec.Logger = "zap"
	ec.LogOutputs = []string{filepath.Join(cfg.DataDir, "etcd.log")}
	client := url.URL{Scheme: "unix", Path: cfg.ClientSocket}
	peer := url.URL{Scheme: "unix", Path: peerSocket}
	ec.ListenClientUrls = []url.URL{client}
	ec.AdvertiseClientUrls = []url.URL{client}
	ec.ListenPeerUrls = []url.URL{peer}
	ec.AdvertisePeerUrls = []url.URL{peer}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.ListenMetricsUrls = nil
	if cfg.MaxTxnOps > 0 {
		ec.MaxTxnOps = cfg.MaxTxnOps
	} else {
		ec.MaxTxnOps = 10000
	}
	ec.MaxRequestBytes = 16 << 20

	e, err := startPrivate(ec)
	if err != nil {
		return nil, fmt.Errorf("etcd: start: %w (log: %s)", err, ec.LogOutputs[0])
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("etcd: member did not become ready within 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	return &Server{e: e}, nil
}

// startPrivate starts the member with the process's umask at 077, so that
// everything it creates, the client socket first, is its owner's alone
// from the moment it exists (bind creates the socket with mode 0777 &^
// umask; there is no window before a chmod). The umask is the process's,
// so Start is to be called before the process starts other work; files
// created meanwhile elsewhere would only come out stricter. The socket's
// mode is checked afterwards and an error returned if anyone else could
// connect.
func startPrivate(ec *embed.Config) (*embed.Etcd, error) {
	old := syscall.Umask(0o077)
	e, err := embed.StartEtcd(ec)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	for _, u := range ec.ListenClientUrls {
		fi, err := os.Stat(u.Path)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("etcd: client socket: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			e.Close()
			return nil, fmt.Errorf("etcd: client socket %s has mode %v; only its owner may connect", u.Path, fi.Mode().Perm())
		}
	}
	return e, nil
}

// Err reports a fatal server error.
func (s *Server) Err() <-chan error { return s.e.Err() }

// Fatal delivers one error when the member can no longer serve: a listener failed
// (Err) or the server stopped on its own (a corrupt or full data directory, say).
// Nothing is delivered after Close.
func (s *Server) Fatal() <-chan error {
	out := make(chan error, 1)
	go func() {
		select {
		case err, ok := <-s.e.Err():
			if ok && err != nil {
				out <- fmt.Errorf("embedded etcd: %w", err)
			}
		case <-s.e.Server.StopNotify():
			if !s.closing.Load() {
				out <- errors.New("embedded etcd: the server stopped (see its log lines above)")
			}
		}
	}()
	return out
}

// Close stops the member. It may be called more than once.
func (s *Server) Close() {
	s.closing.Store(true)
	s.once.Do(s.e.Close)
}
