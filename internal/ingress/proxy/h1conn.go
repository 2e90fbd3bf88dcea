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
	br     *bufio.Reader // nil while idle (await)
	bw     *bufio.Writer // nil while idle (await)
	bufs   *bufPools     // where br, bw and st.scratch come from; nil: keep them
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
	for {
		first := c.served == 0
		if c.br.Buffered() == 0 {
			// Wait for the next request: keep-alive is the idle timeout;
			// for the first one client-header-timeout counts from the
			// connection's start. Until a byte arrives the connection is
			// idle, and Shutdown closes it.
			c.state.Store(connIdle)
			if stopping() && !inputPending(c.nc) {
				return // (a request already sent is served, then the loop ends)
			}
			switch {
			case !first:
				c.nc.SetReadDeadline(time.Now().Add(c.params.idle))
			case c.params.header > 0:
				c.nc.SetReadDeadline(time.Now().Add(c.params.header))
			}
			if err := c.await(); err != nil {
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
		raw, err := readHead(c.br, c.req.raw, &c.params.head)
		c.req.raw = raw
		if err != nil {
			switch {
			case errors.Is(err, errRequestLineBig):
				c.writeError(http.StatusRequestURITooLong, "414 Request-URI Too Large", false)
			case errors.Is(err, errHeadTooLarge):
				c.writeError(http.StatusBadRequest, "400 Request Header Or Cookie Too Large", false)
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
		// Like nginx, which frees its large header buffers between
		// requests, keep no head buffer beyond one large buffer.
		if cap(c.req.raw) > max(c.params.head.size, h1BufSize) {
			c.req.raw = nil
		}
		if cap(c.resp.raw) > h1BufSize {
			c.resp.raw = nil
		}
	}
}

// await waits for the first byte of the next request. A plain connection
// with nothing buffered gives its buffers back to the pools while it waits
// and takes them again when the byte arrives, so an idle keep-alive
// connection holds its goroutine's stack and its socket, no buffer. A TLS
// connection keeps them (tls.Conn may hold decrypted bytes the socket no
// longer shows).
func (c *h1conn) await() error {
	w, ok := c.nc.(readWaiter)
	if !ok || c.bufs == nil || c.br.Buffered() > 0 || c.bw.Buffered() > 0 {
		_, err := c.br.Peek(1)
		return err
	}
	c.releaseBuffers()
	err := w.waitReadable()
	c.br, c.bw = c.bufs.get(c.nc)
	return err
}

// releaseBuffers gives the connection's buffers back to the pools.
func (c *h1conn) releaseBuffers() {
	if c.bufs == nil {
		return
	}
	if c.br != nil {
		c.bufs.put(c.br, c.bw)
		c.br, c.bw = nil, nil
	}
	if c.st.scratch != nil {
		c.bufs.putScratch(c.st.scratch)
		c.st.scratch = nil
	}
	c.st.body = nil
}

// readWaiter is a connection that can wait until it has bytes to read
// without reading them (rawIO).
type readWaiter interface {
	waitReadable() error
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
