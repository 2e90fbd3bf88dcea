package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync/atomic"
	"time"
)

// errNoExchange means the round tripper was used outside the Proxy.
var errNoExchange = errors.New("proxy: request has no exchange")

// errReadTimeout cancels an attempt whose upstream stayed silent for
// longer than proxy-read-timeout while sending the response body.
var errReadTimeout = timeoutError("proxy: upstream read timeout (proxy-read-timeout)")

type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

// upstreamTripper is the ReverseProxy's Transport: it sends a request to
// the exchange's endpoints, moving on to the next endpoint as
// proxy-next-upstream allows.
//
// Retrying is safe only when the request body can be sent again (no body,
// or a buffered body with GetBody) and either the method is idempotent,
// or non_idempotent is configured, or nothing of the request was written
// (the dial failed or the connection broke before the headers were
// written). Go's http.Transport itself already retries, on a fresh
// connection, a request whose reused keep-alive connection turned out to
// be closed by the upstream when nothing was written or the request is
// GET/HEAD/OPTIONS/TRACE; this loop adds PUT and DELETE, timeouts, other
// endpoints and the proxy-next-upstream-tries bound.
type upstreamTripper struct {
	p *Proxy
}

func (t *upstreamTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchangeFrom(req.Context())
	if x == nil {
		return nil, errNoExchange
	}
	nu := x.cfg.ProxyNextUpstream
	tries := x.cfg.ProxyNextUpstreamTries
	if tries <= 0 {
		tries = len(x.eps) // 0 = unlimited: every endpoint once
	}
	tries = max(tries, 1)
	var tried []netip.AddrPort
	used, stale := 0, 0
	for {
		ep, _ := t.p.lb.pick(x.key, x.eps, tried)
		if used+stale > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, r, err := t.try(req, x, ep)
		if err == nil {
			used++
			tried = append(tried, ep)
			if used < tries && nu.RetriesStatus(resp.StatusCode) && canRetry(req, true, nu.NonIdempotent) {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				t.p.metrics.retries.Inc()
				continue
			}
			t.p.lb.health.success(ep)
			return resp, nil
		}
		if req.Context().Err() != nil {
			return nil, err // the client went away; not the endpoint's fault
		}
		timeout := isTimeout(err)
		if r.reused && !timeout && stale < maxStaleRetries {
			// The upstream closed a keep-alive connection as we reused
			// it (the keep-alive race): not the endpoint's fault, and,
			// like nginx, not a spent try. Go's transport already resent
			// GET/HEAD/OPTIONS/TRACE and anything of which nothing was
			// written; here the rest of the idempotent requests are sent
			// again, to the same endpoint, on another connection.
			if !canRetry(req, r.wrote, nu.NonIdempotent) {
				return nil, err
			}
			stale++
			t.p.metrics.transportRetries.Inc()
			continue
		}
		used++
		tried = append(tried, ep)
		t.p.lb.health.failure(ep)
		allowed := nu.Error && !timeout || nu.Timeout && timeout
		if used >= tries || !allowed || !canRetry(req, r.wrote, nu.NonIdempotent) {
			return nil, err
		}
		t.p.metrics.retries.Inc()
		t.p.log.Debug("retrying upstream", "upstream", x.key.Name(), "endpoint", ep, "error", err)
	}
}

// maxStaleRetries bounds the resends after keep-alive races for one
// request; each one consumes (closes) a stale pooled connection.
const maxStaleRetries = 8

// tryResult says how an attempt went.
type tryResult struct {
	wrote  bool // some of the request may have reached the upstream
	reused bool // the (last) connection came from the keep-alive pool
}

// try sends one attempt to ep and records it in the exchange.
func (t *upstreamTripper) try(req *http.Request, x *exchange, ep netip.AddrPort) (resp *http.Response, r tryResult, err error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	var wroteHeaders atomic.Bool // set on the transport's write goroutine
	gotConns := 0
	closing := false // out carries "Connection: close"
	upgrade := req.Header.Get("Upgrade") != ""
	var out *http.Request
	out = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// GotConn runs on this goroutine before the request is handed to
		// the connection's writer, and again for each of the transport's
		// own resends, each after the previous writer has finished (the
		// transport waits for it before returning an error), so the
		// header may be changed here.
		GotConn: func(info httptrace.GotConnInfo) {
			gotConns++
			r.reused = info.Reused
			t.p.metrics.conn(info.Reused)
			if gotConns > 1 {
				t.p.metrics.transportRetries.Inc()
			}
			cc, ok := info.Conn.(*countedConn)
			if !ok || upgrade {
				return
			}
			// upstream-keepalive-requests: on the connection's last
			// request ask the upstream to close after the response, so
			// the pool drops it.
			if cc.startRequest(x.act.tr.params.keepaliveRequests) {
				out.Header.Set("Connection", "close")
				closing = true
			} else if closing {
				out.Header.Del("Connection")
				closing = false
			}
		},
		WroteHeaders: func() { wroteHeaders.Store(true) },
	}))
	u := *req.URL
	u.Host = ep.String()
	out.URL = &u

	a := attempt{addr: ep.String(), start: t.p.now()}
	resp, err = x.act.tr.rt.RoundTrip(out)
	if err != nil {
		cancel(err)
		a.dur = t.p.now().Sub(a.start)
		a.status = http.StatusBadGateway
		if isTimeout(err) {
			a.status = http.StatusGatewayTimeout
		}
		x.attempts = append(x.attempts, a)
		r.wrote = wroteHeaders.Load()
		return nil, r, err
	}
	r.wrote = true
	a.status = resp.StatusCode
	x.attempts = append(x.attempts, a)
	idx := len(x.attempts) - 1
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgradedBody{ReadWriteCloser: rwc, cancel: cancel}
		x.attempts[idx].dur = t.p.now().Sub(a.start)
		return resp, r, nil
	}
	resp.Body = newWatchedBody(resp.Body, x.act.tr.params.readTimeout, cancel, func(n int64) {
		x.attempts[idx].length = n
		x.attempts[idx].dur = t.p.now().Sub(a.start)
	})
	return resp, r, nil
}

// canRetry says whether a failed request may be sent again. A request
// with an Idempotency-Key (or X-Idempotency-Key) header is declared
// idempotent by its client, as Go's transport also takes it.
func canRetry(req *http.Request, wrote, nonIdempotent bool) bool {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return false
	}
	return !wrote || nonIdempotent || isIdempotent(req.Method) ||
		req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// isIdempotent follows nginx: everything but POST, LOCK and PATCH.
func isIdempotent(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, "LOCK":
		return false
	}
	return true
}

// isTimeout classifies an upstream error as a timeout (proxy-next-upstream
// "timeout") rather than an error.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// upgradedBody is the upstream side of an upgraded (101) connection; it
// releases the attempt's context when the connection is closed.
type upgradedBody struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (b *upgradedBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.cancel(nil)
	return err
}

// watchedBody is an upstream response body that fails when the upstream
// sends nothing for readTimeout (proxy-read-timeout counts between two
// reads, not for the whole response), counts its bytes and reports them
// once at EOF or Close.
type watchedBody struct {
	rc      io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	cancel  context.CancelCauseFunc
	n       int64
	done    func(n int64)
	closed  bool
}

func newWatchedBody(rc io.ReadCloser, timeout time.Duration, cancel context.CancelCauseFunc, done func(int64)) *watchedBody {
	b := &watchedBody{rc: rc, timeout: timeout, cancel: cancel, done: done}
	if timeout > 0 {
		b.timer = time.AfterFunc(timeout, func() { cancel(errReadTimeout) })
	}
	return b
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.timer != nil {
		b.timer.Reset(b.timeout)
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.finish()
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.finish()
	b.cancel(nil)
	return err
}

func (b *watchedBody) finish() {
	if b.closed {
		return
	}
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.done(b.n)
}
