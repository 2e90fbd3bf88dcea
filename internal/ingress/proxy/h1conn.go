package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// h1conn serves one client connection on the hand-written HTTP/1.1 path:
// one goroutine, a bufio reader and writer from the Frontend's pools, and
// per-request state that is reused for every request of the connection,
// so a keep-alive request allocates next to nothing.
type h1conn struct {
	p      *Proxy
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	params frontendParams
	scheme string // http or https
	ip     string // client address without port
	port   string // local port

	served   int          // requests read on this connection
	state    atomic.Int32 // connIdle or connActive, read by Shutdown
	upgraded bool         // handed over to a tunnel; not served further

	req  request
	resp response
	st   reqState
	date dateCache
}

const (
	connActive int32 = iota
	connIdle
	connUpgraded // a tunnel: no longer waited for by Shutdown
)

// serve runs the request loop until the client closes, a timeout, an
// error, Connection: close, or stopping() turns true between requests.
func (c *h1conn) serve(stopping func() bool) {
	first := true
	for {
		if c.br.Buffered() == 0 {
			// Wait for the next request: keep-alive is the idle timeout;
			// for the first one client-header-timeout counts from the
			// connection's start. Until a byte arrives the connection is
			// idle, and Shutdown closes it.
			c.state.Store(connIdle)
			if stopping() {
				return
			}
			switch {
			case !first:
				c.nc.SetReadDeadline(time.Now().Add(c.params.idle))
			case c.params.header > 0:
				c.nc.SetReadDeadline(time.Now().Add(c.params.header))
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
			c.state.Store(connActive)
		}
		// client-header-timeout: from the first byte to the end of the
		// head.
		if !first {
			var d time.Time
			if c.params.header > 0 {
				d = time.Now().Add(c.params.header)
			}
			c.nc.SetReadDeadline(d)
		}
		first = false
		raw, err := readHead(c.br, c.req.raw)
		c.req.raw = raw
		if err != nil {
			switch {
			case errors.Is(err, errHeadTooLarge):
				c.writeError(http.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large", false)
			case len(raw) > 0 && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed):
				c.writeError(http.StatusBadRequest, "400 Bad Request", false)
			}
			c.bw.Flush()
			return
		}
		if perr := c.req.parse(); perr != nil {
			c.writeError(perr.status, perr.msg, false)
			c.bw.Flush()
			return
		}
		c.served++
		keep := c.serveRequest()
		if c.upgraded || !keep || stopping() {
			return
		}
	}
}

// newH1conn prepares a connection; nc is a *tls.Conn for HTTPS.
func newH1conn(p *Proxy, nc net.Conn, br *bufio.Reader, bw *bufio.Writer, params frontendParams) *h1conn {
	c := &h1conn{p: p, nc: nc, br: br, bw: bw, params: params, scheme: "http", port: "80"}
	if _, ok := nc.(*tls.Conn); ok {
		c.scheme, c.port = "https", "443"
	}
	if a, err := addrPortOf(nc.RemoteAddr()); err == nil {
		c.ip = a.Addr().Unmap().String()
	} else {
		c.ip = nc.RemoteAddr().String()
	}
	if a, err := addrPortOf(nc.LocalAddr()); err == nil {
		c.port = itoa(int(a.Port()))
	}
	return c
}

// bstr views b as a string without copying. The string is only valid as
// long as b is not modified, which for a request means until the
// connection reads the next one; nothing that outlives the request may
// keep it.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
