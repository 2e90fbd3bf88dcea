package l4

import (
	"context"
	"io"
	"net"
	"sync"
)

// splice copies bytes between a and b in both directions until both
// directions have ended or ctx is cancelled, then closes both.
//
// EOF on one side is passed on as a half-close (CloseWrite) of the other,
// so request/response protocols that shut down their write side work. An
// error in either direction resets both connections, so a reset on one
// side reaches the other and neither direction is left hanging.
func splice(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(b, a) })
	pipe(a, b)
	wg.Wait()
	a.Close()
	b.Close()
}

// pipe copies src to dst, then half-closes dst (or closes both when dst
// cannot half-close); on an error it resets both.
// For two TCP connections io.Copy uses splice(2).
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil {
		cw, ok := dst.(interface{ CloseWrite() error })
		if !ok {
			// No half-close: end the whole connection cleanly.
			dst.Close()
			src.Close()
			return
		}
		if cw.CloseWrite() == nil {
			return
		}
	}
	reset(dst)
	reset(src)
}

// reset closes c, with an RST rather than a FIN when c is TCP.
func reset(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
	c.Close()
}
