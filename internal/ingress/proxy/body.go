package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// replayBody returns the largest request body kept in memory, so that the
// request can be sent again to another endpoint or on a fresh connection:
// client-body-buffer-size (8k by default). Larger bodies are streamed,
// never held whole, and their requests are retried only if nothing was
// sent. (nginx spools them to a temporary file instead.)
func replayBody(cfg *nginxconf.Config) int64 {
	if cfg.ClientBodyBufferSize <= 0 {
		return 8 << 10
	}
	return cfg.ClientBodyBufferSize
}

// prepareBody enforces proxy-body-size (413), applies client-body-timeout
// between two reads of the body (408, after which the connection is
// closed), and buffers bodies up to
// client-body-buffer-size with a GetBody so they are replayable. It returns 0 when
// the request may go on, else the status to answer with.
func prepareBody(w http.ResponseWriter, r *http.Request, cfg *nginxconf.Config) int {
	limit := cfg.ProxyBodySize
	if limit > 0 && r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return http.StatusRequestEntityTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return 0
	}
	body := io.ReadCloser(&deadlineBody{rc: r.Body, ctl: http.NewResponseController(w), timeout: cfg.ClientBodyTimeout})
	if limit > 0 {
		body = http.MaxBytesReader(w, body, limit)
	}
	maxReplayBody := replayBody(cfg)
	if r.ContentLength > maxReplayBody {
		r.Body = body
		return 0
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(body, maxReplayBody+1))
	if err != nil {
		// The rest of the body will not be read: close the connection
		// after the answer rather than let net/http wait to discard it.
		w.Header().Set("Connection", "close")
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return http.StatusRequestEntityTooLarge
		case errors.Is(err, os.ErrDeadlineExceeded):
			return http.StatusRequestTimeout
		default:
			return http.StatusBadRequest
		}
	}
	if int64(buf.Len()) > maxReplayBody {
		// A chunked body larger than we keep: stream the rest.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf.Bytes()), body), body}
		return 0
	}
	data := buf.Bytes()
	r.ContentLength = int64(len(data))
	r.TransferEncoding = nil
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return 0
}

// deadlineBody sets the connection's read deadline before every read of
// the request body (client-body-timeout) and clears it at the end of the
// body, so that waiting for the upstream is not mistaken for a slow
// client.
type deadlineBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && !b.done {
		b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.rc.Read(p)
	if err == io.EOF && !b.done && b.timeout > 0 {
		b.done = true
		b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }
