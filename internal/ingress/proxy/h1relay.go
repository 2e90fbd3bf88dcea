package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
)

// relay writes the upstream's response to the client and returns the
// upstream connection to the pool when its response was read completely.
// It reports whether the client connection may serve another request.
func (c *h1conn) relay(uc *upConn, pool *upstreamPool, keep bool) bool {
	r := &c.resp
	x := &c.st.x
	idx := len(x.attempts) - 1
	if r.status == http.StatusSwitchingProtocols {
		if !c.req.upgrade {
			uc.close()
			x.attempts[idx].status = http.StatusBadGateway
			return c.upstreamFailed(errBadResponse, uc.ep.addr)
		}
		return c.tunnel(uc, idx)
	}
	c.st.status = r.status
	head := bstr(c.req.method) == "HEAD"
	hasBody := !head && r.status >= 200 && r.status != 204 && r.status != 304
	chunkOut := false
	w := c.bw
	w.WriteString("HTTP/1.1 ")
	writeStatusLine(w, r.status, bstr(r.reason))
	keepServer, sentServer := keepUpstreamServer(x.cfg), false
	for i, h := range r.headers {
		switch r.kinds[i] {
		case hConnection, hHopByHop, hTransferEncoding, hUpgrade:
			continue
		case hServer:
			if !keepServer {
				continue
			}
			sentServer = true
		case hContentLength:
			if !head {
				continue // written below from the framing
			}
		default:
			if r.connTokens != nil && r.listedInConnection(h.name) {
				continue
			}
		}
		w.Write(h.name)
		w.WriteString(": ")
		w.Write(h.value)
		w.WriteString("\r\n")
	}
	if !r.hasDate {
		c.writeDate()
	}
	if !sentServer {
		c.writeServer(x.cfg)
	}
	if hasBody {
		switch {
		case r.contentLength >= 0:
			w.WriteString("Content-Length: ")
			w.Write(strconv.AppendInt(w.AvailableBuffer(), r.contentLength, 10))
			w.WriteString("\r\n")
		case c.req.minor == 1:
			w.WriteString("Transfer-Encoding: chunked\r\n")
			chunkOut = true
		default:
			keep = false // HTTP/1.0: the body ends with the connection
		}
	}
	keep = c.writeConnection(keep)
	w.WriteString("\r\n")
	var n int64
	var err error
	if hasBody {
		n, err = c.copyBody(uc, chunkOut)
	}
	x.attempts[idx].length = n
	x.attempts[idx].dur = c.p.now().Sub(x.attempts[idx].start)
	c.st.bytes = n
	_, upstreamFailed := err.(*upstreamError)
	switch {
	case upstreamFailed:
		// The upstream failed mid-body: the response cannot be completed
		// or corrected; cut the client connection so it sees the error.
		uc.close()
		c.bw.Flush()
		return false
	case err != nil:
		uc.close() // the client is gone; the rest of the body is unread
		return false
	case uc.closeAfter:
		uc.close()
	default:
		pool.put(uc)
	}
	if err := w.Flush(); err != nil {
		return false
	}
	return keep
}

// upstreamError marks a read error on the upstream side of a body copy.
type upstreamError struct{ err error }

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// copyBody relays the body of c.resp from uc to the client, re-chunked
// when chunkOut. Data goes out as it arrives: the client writer is
// flushed whenever the next upstream read would wait, so a short
// response leaves with its head in one write, and a streamed one (SSE,
// long polling) is not held back.
func (c *h1conn) copyBody(uc *upConn, chunkOut bool) (int64, error) {
	r := &c.resp
	w := c.bw
	if r.contentLength >= 0 && !chunkOut {
		var n int64
		for n < r.contentLength {
			if uc.br.Buffered() == 0 && w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					return n, err
				}
			}
			if w.Available() == 0 {
				if err := w.Flush(); err != nil {
					return n, err
				}
			}
			buf := w.AvailableBuffer()[:min(int64(w.Available()), r.contentLength-n)]
			k, err := uc.br.Read(buf)
			w.Write(buf[:k])
			n += int64(k)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, &upstreamError{err}
			}
		}
		return n, nil
	}
	src := bodyReader(uc.br, r)
	if c.st.scratch == nil {
		if c.bufs != nil {
			c.st.scratch = c.bufs.getScratch()
		} else {
			c.st.scratch = make([]byte, scratchSize)
		}
	}
	buf := c.st.scratch[:cap(c.st.scratch)]
	var n int64
	for {
		if uc.br.Buffered() == 0 && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				return n, err
			}
		}
		k, err := src.Read(buf)
		if k > 0 {
			n += int64(k)
			var hx [16]byte
			w.Write(strconv.AppendInt(hx[:0], int64(k), 16))
			w.WriteString("\r\n")
			w.Write(buf[:k])
			w.WriteString("\r\n")
		}
		if err == io.EOF {
			if r.chunked {
				if err := skipTrailer(uc.br); err != nil {
					return n, &upstreamError{err}
				}
			}
			w.WriteString("0\r\n\r\n")
			return n, nil
		}
		if err != nil {
			return n, &upstreamError{err}
		}
	}
}

// bodyReader decodes the framing of a body that is not a plain
// Content-Length one.
func bodyReader(br *bufio.Reader, r *response) io.Reader {
	switch {
	case r.chunked:
		return httputil.NewChunkedReader(br)
	case r.contentLength >= 0:
		return &lengthReader{r: br, left: r.contentLength}
	default:
		return br // to the close
	}
}

// copyBody reads up to limit bytes of a response body and throws them
// away; more than that is an error (the connection is then closed).
func copyBody(_ io.Writer, br *bufio.Reader, r *response, limit int64) (int64, error) {
	src := bodyReader(br, r)
	var buf [4096]byte
	var n int64
	for n <= limit {
		k, err := src.Read(buf[:])
		n += int64(k)
		if err == io.EOF {
			if r.chunked {
				return n, skipTrailer(br)
			}
			if r.contentLength < 0 {
				return n, io.EOF // to the close: not reusable
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, errors.New("proxy: response body too large to discard")
}

// skipTrailer reads the trailer section after a chunked body's last
// chunk, up to its empty line. Trailers are not forwarded.
func skipTrailer(br *bufio.Reader) error {
	for i := 0; i < 1024; i++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if isEmptyLine(line) {
			return nil
		}
	}
	return errors.New("proxy: too many trailer lines")
}
