package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// bufPools recycle the client connections' buffered readers and writers,
// and the copy buffers of re-chunked response bodies. A plain connection
// gives them back whenever it waits for its next request (h1conn.await),
// so an idle keep-alive connection holds none.
type bufPools struct {
	r, w, scratch sync.Pool
}

// scratchSize is the copy buffer of a re-chunked response body.
const scratchSize = 16 << 10

func (b *bufPools) getScratch() []byte {
	if p, _ := b.scratch.Get().(*[]byte); p != nil {
		return *p
	}
	return make([]byte, scratchSize)
}

func (b *bufPools) putScratch(s []byte) {
	if cap(s) == scratchSize {
		b.scratch.Put(&s)
	}
}

const h1BufSize = 8 << 10

func (b *bufPools) get(nc net.Conn) (*bufio.Reader, *bufio.Writer) {
	br, _ := b.r.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nc, h1BufSize)
	} else {
		br.Reset(nc)
	}
	bw, _ := b.w.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(nc, h1BufSize)
	} else {
		bw.Reset(nc)
	}
	return br, bw
}

func (b *bufPools) put(br *bufio.Reader, bw *bufio.Writer) {
	br.Reset(nil)
	bw.Reset(nil)
	b.r.Put(br)
	b.w.Put(bw)
}

// serveFast serves one accepted connection on the hand-written path. A
// TLS connection is handshaken first (bounded by client-header-timeout,
// as net/http bounds it by ReadHeaderTimeout); one that negotiated h2 by
// ALPN is handed to net/http, which speaks HTTP/2.
func (g *generation) serveFast(nc net.Conn) {
	f := g.f
	owned := false  // by runConn, which ends the connection
	handed := false // to net/http, whose ConnState releases the slot
	defer func() {
		if owned {
			return
		}
		g.connDone()
		if !handed {
			f.release()
		}
	}()
	defer g.recoverConn(nc)
	nc = newRawIO(nc)
	if f.tlsCfg != nil {
		tc := tls.Server(nc, f.tlsCfg)
		if g.params.header > 0 {
			nc.SetDeadline(time.Now().Add(g.params.header))
		}
		if err := tc.HandshakeContext(context.Background()); err != nil {
			nc.Close()
			return
		}
		nc.SetDeadline(time.Time{})
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			handed = f.handToNetHTTP(tc)
			return
		}
		nc = tc
	}
	br, bw := f.bufs.get(nc)
	c := newH1conn(f.fast, nc, br, bw, g.params)
	c.bufs = &f.bufs
	g.mu.Lock()
	g.fastConns[c] = struct{}{}
	g.mu.Unlock()
	owned = true
	// A goroutine of its own, begun with a small stack: waiting between
	// requests it needs little, and the collector shrinks what serving a
	// request grew back to that (this one's stack also holds the TLS
	// handshake's frames).
	go g.runConn(c)
}

// runConn serves c until it ends, then ends it.
func (g *generation) runConn(c *h1conn) {
	defer g.endConn(c)
	defer g.recoverConn(c.nc)
	c.serve(g.stopping.Load)
}

// recoverConn is deferred around serving a connection: like net/http, a
// panic serving one connection closes that connection, not the process.
func (g *generation) recoverConn(nc net.Conn) {
	if r := recover(); r != nil {
		nc.Close()
		g.f.log.Error("panic serving connection", "remote", nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
	}
}

// endConn closes a fast-path connection and gives back what it held.
func (g *generation) endConn(c *h1conn) {
	g.mu.Lock()
	delete(g.fastConns, c)
	g.mu.Unlock()
	c.nc.Close()
	c.releaseBuffers()
	g.connDone()
	g.f.release()
}

// connDone counts a fast-path connection as ended.
func (g *generation) connDone() {
	g.mu.Lock()
	g.conns--
	finished := g.retired && g.conns == 0
	g.mu.Unlock()
	if finished {
		g.forget()
	}
}

// handToNetHTTP gives an h2 connection to the current generation's
// http.Server. It reports false when it closed the connection instead.
func (f *Frontend) handToNetHTTP(c net.Conn) bool {
	for {
		f.mu.Lock()
		g := f.cur
		f.mu.Unlock()
		select {
		case g.handoff <- c:
			return true
		case <-g.ln.stop:
			// Retired meanwhile: try the generation that replaced it.
		case <-f.done:
			c.Close()
			return false
		}
	}
}

// shutdownFast closes the generation's idle fast-path connections, makes
// active ones close after their current request and waits for them, like
// http.Server.Shutdown. A connection waiting for a request whose bytes have
// already arrived counts as active: that request is served. Upgraded
// connections are not waited for.
func (g *generation) shutdownFast(ctx context.Context) error {
	g.stopping.Store(true)
	wait := time.Millisecond
	for {
		g.mu.Lock()
		active := 0
		for c := range g.fastConns {
			switch c.state.Load() {
			case connIdle:
				// A request that has reached the socket is in flight: the
				// connection is about to wake up for it and serve it.
				if inputPending(c.nc) {
					active++
				} else {
					c.nc.Close()
				}
			case connActive:
				active++
			}
		}
		g.mu.Unlock()
		if active == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
