package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// reqBody is a request body on the hand-written path: the part read into
// memory (all of it when it fits in client-body-buffer-size, so the request can be
// sent again) and, for larger bodies, the rest still to be streamed from
// the client.
type reqBody struct {
	buf    []byte
	stream io.Reader // nil when buf is the whole body
	known  bool      // the length is known: len(buf) (stream == nil) or Content-Length
	length int64     // the length when known
	none   bool      // the request had no body framing at all
}

// readBody applies proxy-body-size (413) and client-body-timeout (408)
// and reads the body, like prepareBody does on the net/http path. It
// returns 0 or the status to answer with (the connection is then closed).
func (c *h1conn) readBody(cfg *nginxconf.Config) (reqBody, int) {
	q := &c.req
	limit := cfg.ProxyBodySize
	if limit > 0 && q.contentLength > limit {
		return reqBody{}, http.StatusRequestEntityTooLarge
	}
	if !q.hasBody() {
		return reqBody{none: q.contentLength < 0 && !q.chunked, known: true}, 0
	}
	if q.expect100 {
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := c.bw.Flush(); err != nil {
			return reqBody{}, http.StatusBadRequest
		}
	}
	var src io.Reader
	if q.chunked {
		src = httputil.NewChunkedReader(c.br)
	} else {
		src = &lengthReader{r: c.br, left: q.contentLength}
	}
	src = &clientBodyReader{r: src, nc: c.nc, timeout: cfg.ClientBodyTimeout}
	if limit > 0 {
		src = &limitedBody{r: src, left: limit}
	}
	maxReplayBody := replayBody(cfg)
	if q.contentLength > maxReplayBody {
		return reqBody{stream: src, known: true, length: q.contentLength}, 0
	}
	buf := c.st.body[:0]
	var err error
	if q.contentLength > 0 {
		if int64(cap(buf)) < q.contentLength {
			buf = make([]byte, 0, q.contentLength)
		}
		buf = buf[:q.contentLength]
		_, err = io.ReadFull(src, buf)
	} else {
		buf, err = readChunkedBody(src, buf, maxReplayBody)
		if err == nil && int64(len(buf)) <= maxReplayBody {
			err = skipTrailer(c.br)
		}
	}
	if err != nil {
		c.st.body = buf[:0]
		switch {
		case errors.Is(err, errBodyTooLarge):
			return reqBody{}, http.StatusRequestEntityTooLarge
		case errors.Is(err, os.ErrDeadlineExceeded):
			return reqBody{}, http.StatusRequestTimeout
		default:
			return reqBody{}, http.StatusBadRequest
		}
	}
	if int64(cap(buf)) <= maxReplayBody {
		c.st.body = buf[:0] // keep it for the next request
	} else {
		c.st.body = nil
	}
	if int64(len(buf)) > maxReplayBody {
		// A chunked body larger than we keep: stream the rest.
		return reqBody{buf: buf, stream: src}, 0
	}
	return reqBody{buf: buf, known: true, length: int64(len(buf))}, 0
}

// readChunkedBody reads a chunked body into buf until its end or until
// it holds more than max bytes.
func readChunkedBody(src io.Reader, buf []byte, max int64) ([]byte, error) {
	for int64(len(buf)) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// clientBodyReader sets the client connection's read deadline before
// every read of the body (client-body-timeout counts between reads).
type clientBodyReader struct {
	r       io.Reader
	nc      net.Conn
	timeout time.Duration
}

func (b *clientBodyReader) Read(p []byte) (int, error) {
	if b.timeout > 0 {
		b.nc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return b.r.Read(p)
}

// lengthReader reads a Content-Length body: EOF after left bytes, and
// io.ErrUnexpectedEOF when the client closes before.
type lengthReader struct {
	r    io.Reader
	left int64
}

func (b *lengthReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if b.left == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

var errBodyTooLarge = errors.New("proxy: request body larger than proxy-body-size")

// limitedBody fails once more than left bytes were read.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}
