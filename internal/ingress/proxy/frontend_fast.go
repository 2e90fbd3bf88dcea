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

// bufPools recycle the client connections' buffered readers and writers.
type bufPools struct {
	r, w sync.Pool
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
	defer g.connDone()
	defer func() {
		// Like net/http: a panic serving one connection closes that
		// connection, not the process.
		if r := recover(); r != nil {
			nc.Close()
			f.log.Error("panic serving connection", "remote", nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		}
	}()
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
			f.handToNetHTTP(tc)
			return
		}
		nc = tc
	}
	br, bw := f.bufs.get(nc)
	c := newH1conn(f.fast, nc, br, bw, g.params)
	g.mu.Lock()
	g.fastConns[c] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.fastConns, c)
		g.mu.Unlock()
	}()
	c.serve(g.stopping.Load)
	nc.Close()
	f.bufs.put(br, bw)
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
// http.Server.
func (f *Frontend) handToNetHTTP(c net.Conn) {
	for {
		f.mu.Lock()
		g := f.cur
		f.mu.Unlock()
		select {
		case g.handoff <- c:
			return
		case <-g.ln.stop:
			// Retired meanwhile: try the generation that replaced it.
		case <-f.done:
			c.Close()
			return
		}
	}
}

// shutdownFast closes the generation's idle fast-path connections, makes
// active ones close after their current request and waits for them, like
// http.Server.Shutdown. Upgraded connections are not waited for.
func (g *generation) shutdownFast(ctx context.Context) error {
	g.stopping.Store(true)
	wait := time.Millisecond
	for {
		g.mu.Lock()
		active := 0
		for c := range g.fastConns {
			switch c.state.Load() {
			case connIdle:
				c.nc.Close()
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
