// Package stallnet puts a link that can stall between clients and a server listening on
// a unix socket (the embedded etcd, say), for tests of what a network hiccup or a
// partition does: while the link is held, bytes in both directions wait, as they do
// while TCP retransmits across a cut, and flow again when it is released.
package stallnet

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Link relays connections made to its socket to the upstream socket.
type Link struct {
	path string
	mu   sync.Mutex
	open chan struct{} // closed while bytes flow
}

// New listens on a fresh socket and relays to upstream (a unix socket path); it is
// closed when the test ends.
func New(t testing.TB, upstream string) *Link {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "fjord-stallnet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &Link{path: filepath.Join(dir, "link.sock"), open: make(chan struct{})}
	close(l.open)
	ln, err := net.Listen("unix", l.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go l.pass(up, c)
			go l.pass(c, up)
		}
	}()
	return l
}

// Endpoint is the link's client URL (unix://...).
func (l *Link) Endpoint() string { return "unix://" + l.path }

// pass copies src to dst, holding what it read while the link is held.
func (l *Link) pass(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.mu.Lock()
			gate := l.open
			l.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Hold makes every byte wait from now until Release.
func (l *Link) Hold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.open:
		l.open = make(chan struct{})
	default: // already held
	}
}

// Release lets the held bytes, and every later one, through.
func (l *Link) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.open:
	default:
		close(l.open)
	}
}

// Stall holds the link for d, then releases it.
func (l *Link) Stall(d time.Duration) {
	l.Hold()
	time.Sleep(d)
	l.Release()
}
