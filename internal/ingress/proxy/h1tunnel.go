package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// tunnel completes an upgrade (101 Switching Protocols): the response
// head goes to the client, then bytes are copied both ways until either
// side closes. Like an upgraded connection on the net/http path, the
// client connection leaves the Frontend's request loop and is not waited
// for by Shutdown; the access log line is written when the tunnel ends.
func (c *h1conn) tunnel(uc *upConn, idx int) bool {
	r := &c.resp
	x := &c.st.x
	c.st.status = http.StatusSwitchingProtocols
	c.upgraded = true
	c.state.Store(connUpgraded)
	w := c.bw
	w.WriteString("HTTP/1.1 101 ")
	w.WriteString(orDefault(bstr(r.reason), "Switching Protocols"))
	w.WriteString("\r\n")
	keepServer, sentServer := keepUpstreamServer(x.cfg), false
	for i, h := range r.headers {
		if r.kinds[i] == hServer {
			if !keepServer {
				continue
			}
			sentServer = true
		}
		w.Write(h.name)
		w.WriteString(": ")
		w.Write(h.value)
		w.WriteString("\r\n")
	}
	if !sentServer {
		c.writeServer(x.cfg)
	}
	w.WriteString("\r\n")
	x.attempts[idx].dur = c.p.now().Sub(x.attempts[idx].start)
	if err := w.Flush(); err != nil {
		uc.close()
		return false
	}
	c.nc.SetDeadline(time.Time{})
	uc.nc.SetDeadline(time.Time{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipe(uc.nc, c.br, c.nc)
	}()
	pipe(c.nc, uc.br, uc.nc)
	wg.Wait()
	return false
}

// pipe copies what src has buffered and then src's connection to dst,
// and closes both ends when done, which ends the other direction too.
func pipe(dst net.Conn, src *bufio.Reader, srcConn net.Conn) {
	if n := src.Buffered(); n > 0 {
		b, _ := src.Peek(n)
		dst.Write(b)
		src.Discard(n)
	}
	io.Copy(dst, srcConn)
	dst.Close()
	srcConn.Close()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
