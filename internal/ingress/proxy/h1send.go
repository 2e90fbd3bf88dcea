package proxy

import (
	"io"
	"net/http/httputil"
	"strconv"
)

// sendRequest writes the request head and body to the upstream: one
// buffered write (and one flush) for a request whose body is in memory.
//
// Headers are forwarded as the client sent them except hop-by-hop ones
// (and those the Connection header names), Expect (the proxy already
// answered it and read the body), and the forwarded headers the proxy
// sets itself: incoming X-Forwarded-*, X-Real-IP, X-Scheme and Forwarded
// are not trusted, like ingress-nginx with use-forwarded-headers "false".
func (c *h1conn) sendRequest(uc *upConn, body reqBody, last bool) error {
	q := &c.req
	x := &c.st.x
	w := uc.bw
	w.Write(q.method)
	w.WriteByte(' ')
	w.Write(c.st.fwd)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	if host := c.st.host; host != "" {
		w.WriteString(host)
	} else {
		w.WriteString(uc.ep.name) // HTTP/1.0 without Host, as Go's transport does
	}
	w.WriteString("\r\n")
	for i, h := range q.headers {
		switch q.kinds[i] {
		case hHost, hContentLength, hTransferEncoding, hConnection, hHopByHop, hExpect,
			hRequestID, hXForwardedFor, hReplaced:
			continue
		case hUpgrade:
			if !q.upgrade {
				continue
			}
		default:
			if q.connTokens != nil && q.listedInConnection(h.name) {
				continue
			}
		}
		w.Write(h.name)
		w.WriteString(": ")
		w.Write(h.value)
		w.WriteString("\r\n")
	}
	writeHeader(w, "X-Request-ID", x.reqID)
	writeHeader(w, "X-Real-IP", x.clientIP)
	writeHeader(w, "X-Forwarded-For", x.clientIP)
	writeHeader(w, "X-Forwarded-Host", c.st.host)
	writeHeader(w, "X-Forwarded-Port", x.port)
	writeHeader(w, "X-Forwarded-Proto", x.scheme)
	writeHeader(w, "X-Scheme", x.scheme)
	switch {
	case body.known && !body.none:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), body.length, 10))
		w.WriteString("\r\n")
	case !body.known:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case q.upgrade:
		w.WriteString("Connection: Upgrade\r\n")
	case last:
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	switch {
	case body.stream == nil:
		w.Write(body.buf)
	case body.known:
		w.Write(body.buf)
		if _, err := io.Copy(w, body.stream); err != nil {
			return err
		}
	default:
		cw := httputil.NewChunkedWriter(w)
		cw.Write(body.buf)
		if _, err := io.Copy(cw, body.stream); err != nil {
			return err
		}
		cw.Close()
		w.WriteString("\r\n")
	}
	return w.Flush()
}

func writeHeader(w interface {
	WriteString(string) (int, error)
}, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(value)
	w.WriteString("\r\n")
}

// upstreamTarget is the request-target sent upstream: origin-form as
// received; an absolute-form target is reduced to its path and query,
// like net/http's URL.RequestURI.
func upstreamTarget(t []byte) []byte {
	if len(t) == 0 || t[0] == '/' || len(t) == 1 && t[0] == '*' {
		return t
	}
	for i := 0; i+2 < len(t); i++ {
		if t[i] == ':' && t[i+1] == '/' && t[i+2] == '/' {
			rest := t[i+3:]
			for j, ch := range rest {
				if ch == '/' || ch == '?' {
					if ch == '?' {
						return append([]byte{'/'}, rest[j:]...)
					}
					return rest[j:]
				}
			}
			return []byte{'/'}
		}
	}
	return t
}
