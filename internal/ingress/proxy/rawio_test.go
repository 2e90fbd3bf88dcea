package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRawIO(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c) // echo until the client closes its side
		c.Close()
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newRawIO(nc)
	if _, ok := c.(*rawIO); !ok {
		t.Fatalf("a TCP connection was not wrapped: %T", c)
	}
	// A big write runs concurrently with the reads that drain the echo.
	msg := strings.Repeat("0123456789", 200_000)
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, msg)
		werr <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: %v (equal %v)", err, string(got) == msg)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	// Deadlines work as on net.Conn.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Errorf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	// EOF once the peer closes, and net.ErrClosed after our Close.
	nc.(*net.TCPConn).CloseWrite()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after the peer closed: %v, want EOF", err)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}

func TestRawFileWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := logWriterFor(f)
	if _, ok := w.(*rawFileWriter); !ok {
		t.Fatalf("a regular file was not wrapped: %T", w)
	}
	for _, line := range []string{"one\n", "two\n"} {
		if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\n" {
		t.Errorf("file holds %q", b)
	}
	r, wp, _ := os.Pipe()
	defer r.Close()
	defer wp.Close()
	if logWriterFor(wp) != io.Writer(wp) {
		t.Error("a pipe must be written normally")
	}
}

// TestRawIOWaitReadable: waiting consumes nothing, honours the deadline
// and reports the peer's close.
func TestRawIOWaitReadable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			peer <- c
		}
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newRawIO(nc).(*rawIO)
	p := <-peer
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := c.waitReadable(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("nothing sent: %v, want the deadline", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(p, "hi")
	if err := c.waitReadable(); err != nil {
		t.Fatalf("data sent: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := io.ReadAtLeast(c, buf, 2); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read after the wait: %q, %v; the wait must not consume", buf[:n], err)
	}
	p.Close()
	if err := c.waitReadable(); err != io.EOF {
		t.Fatalf("peer closed: %v, want io.EOF", err)
	}
}
