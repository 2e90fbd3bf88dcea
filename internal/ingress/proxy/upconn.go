package proxy

import (
	"bufio"
	"net"
	"syscall"
	"time"
)

// upConn is one upstream HTTP/1.1 connection of the hand-written client.
// It is owned either by its endpoint's idle stack or by exactly one
// request, so it needs no locking. Reads and writes go through the
// connection itself, which applies proxy-read-timeout and
// proxy-send-timeout; there are no per-connection goroutines.
type upConn struct {
	nc         net.Conn
	io         net.Conn // nc, read and written through rawIO
	br         *bufio.Reader
	bw         *bufio.Writer
	ep         *epPool
	requests   int       // requests started on this connection
	idleSince  time.Time // when it was last put back into the pool
	written    int64     // bytes written for the current request
	readBytes  int64     // bytes read for the current request
	closeAfter bool      // the current response is the connection's last

	readTimeout, sendTimeout time.Duration
	rdl, wdl                 time.Time // deadlines currently set
}

func newUpConn(nc net.Conn, ep *epPool, params transportParams) *upConn {
	c := &upConn{nc: nc, io: newRawIO(nc), ep: ep, readTimeout: params.readTimeout, sendTimeout: params.sendTimeout}
	c.br = bufio.NewReaderSize(c, 8<<10)
	c.bw = bufio.NewWriterSize(c, 8<<10)
	return c
}

// Read reads from the socket with a deadline of proxy-read-timeout from
// now: the timeout counts between two reads, like nginx's. To keep the
// runtime's timer untouched on most reads, a deadline is only moved when
// it would expire earlier than the timeout; it is then set 1/16 later, so
// the timeout fires after at least the configured time and at most 1/16
// more.
func (c *upConn) Read(b []byte) (int, error) {
	if c.readTimeout > 0 {
		now := time.Now()
		if c.rdl.Sub(now) < c.readTimeout {
			c.rdl = now.Add(c.readTimeout + c.readTimeout/16)
			c.nc.SetReadDeadline(c.rdl)
		}
	}
	n, err := c.io.Read(b)
	c.readBytes += int64(n)
	return n, err
}

// Write writes with proxy-send-timeout as the deadline, moved like Read's.
func (c *upConn) Write(b []byte) (int, error) {
	if c.sendTimeout > 0 {
		now := time.Now()
		if c.wdl.Sub(now) < c.sendTimeout {
			c.wdl = now.Add(c.sendTimeout + c.sendTimeout/16)
			c.nc.SetWriteDeadline(c.wdl)
		}
	}
	n, err := c.io.Write(b)
	c.written += int64(n)
	return n, err
}

func (c *upConn) close() { c.nc.Close() }

// closedByPeer reports whether an idle connection can no longer be used:
// the upstream closed it (EOF or reset) or sent something unasked. It
// peeks without blocking, one system call, and is used only for
// connections that sat idle long enough for an upstream to have closed
// them; a close that races with the request is handled by the retry rules
// instead.
func (c *upConn) closedByPeer() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	dead := false
	var b [1]byte
	rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		dead = err != syscall.EAGAIN && err != syscall.EINTR || n > 0
		return true
	})
	return dead
}
