package lab

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestStoreRelay: a node's connection reaches the store's socket and bytes flow both
// ways; a connection from any other address is closed without reaching the store; the
// relay closes everything when its context ends.
func TestStoreRelay(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "etcd.sock")
	up, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	var upstreamConns atomic.Int32
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			upstreamConns.Add(1)
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	start := func(allow func(netip.Addr) bool) (string, context.CancelFunc, chan error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- relayStore(ctx, ln, allow, dial, slog.New(slog.DiscardHandler)) }()
		return ln.Addr().String(), cancel, done
	}

	addr, stop, done := start(func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("range /fjord/nodes")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("relayed %q, %v; want %q", got, err, msg)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("relay returned %v after its context ended", err)
	}
	if n, err := c.Read(got); err == nil {
		t.Fatalf("the client's connection is still open after the relay stopped (read %d bytes)", n)
	}
	c.Close()

	before := upstreamConns.Load()
	addr, stop, done = start(func(netip.Addr) bool { return false })
	defer func() { stop(); <-done }()
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(msg)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(got); err == nil {
		t.Fatalf("a connection from outside the nodes got %q back", got[:n])
	}
	if n := upstreamConns.Load(); n != before {
		t.Fatalf("a refused connection reached the store (%d upstream connections, want %d)", n, before)
	}
}
