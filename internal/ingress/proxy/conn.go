package proxy

import (
	"net"
	"sync/atomic"
	"time"
)

// countedConn is an upstream connection that counts the requests sent on
// it (for upstream-keepalive-requests) and bounds every write by
// proxy-send-timeout.
type countedConn struct {
	net.Conn
	requests    atomic.Int64
	sendTimeout time.Duration
}

// Write sets a write deadline of sendTimeout from now, so a stalled
// upstream that stops reading fails the request instead of hanging it.
func (c *countedConn) Write(b []byte) (int, error) {
	if c.sendTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.sendTimeout))
	}
	return c.Conn.Write(b)
}

// startRequest counts one more request on the connection and reports
// whether it is the last one allowed (max 0 = unlimited).
func (c *countedConn) startRequest(max int) (last bool) {
	n := c.requests.Add(1)
	return max > 0 && n >= int64(max)
}
