package proxy

import (
	"errors"
	"net/http"
	"net/netip"
)

// errBadResponse is an upstream answer that is not HTTP/1.x.
var errBadResponse = errors.New("proxy: malformed response from upstream")

// attemptInfo says how a failed attempt went, for the retry rules.
type attemptInfo struct {
	reused bool // the connection came from the keep-alive pool
	wrote  bool // some of the request may have reached the upstream
	read   bool // some of a response arrived
}

// proxy sends the request to the upstream's endpoints, moving on as
// proxy-next-upstream allows, and relays the response. The rules are
// those of upstreamTripper (see there), applied to the hand-written
// client: a request whose reused keep-alive connection turns out to be
// closed by the upstream before any answer (the keep-alive race) is sent
// again on a freshly dialled connection if it is replayable and either
// idempotent or nothing of it was sent; this costs no try.
func (c *h1conn) proxy(up *upstreamInfo, body reqBody, keep bool) bool {
	p := c.p
	x := &c.st.x
	q := &c.req
	nu := x.cfg.ProxyNextUpstream
	tries := x.cfg.ProxyNextUpstreamTries
	if tries <= 0 {
		tries = len(x.eps)
	}
	tries = max(tries, 1)
	replayable := body.stream == nil
	idempotent := nu.NonIdempotent || isIdempotent(bstr(q.method)) ||
		len(q.get(hIdempotencyKey)) > 0
	pool := x.act.tr.pool
	tried := c.st.tried[:0]
	defer func() { c.st.tried = tried[:0] }()
	used, stale := 0, 0
	fresh := false
	for {
		ep, _ := p.lb.pickWith(up.rr, up.eps, tried)
		uc, info, err := c.attempt(pool, ep, body, fresh)
		fresh = false
		if err == nil {
			used++
			tried = append(tried, ep)
			if used < tries && nu.RetriesStatus(c.resp.status) && replayable && idempotent {
				c.discard(uc, pool)
				p.metrics.retries.Inc()
				continue
			}
			p.lb.health.success(ep)
			return c.relay(uc, pool, keep)
		}
		canResend := replayable && (!info.wrote || idempotent)
		timeout := isTimeout(err)
		if info.reused && !timeout && !info.read && stale < maxStaleRetries {
			if !canResend {
				return c.upstreamFailed(err, ep)
			}
			stale++
			fresh = true
			p.metrics.transportRetries.Inc()
			continue
		}
		used++
		tried = append(tried, ep)
		p.lb.health.failure(ep)
		allowed := nu.Error && !timeout || nu.Timeout && timeout
		if used >= tries || !allowed || !canResend {
			return c.upstreamFailed(err, ep)
		}
		p.metrics.retries.Inc()
		p.log.Debug("retrying upstream", "upstream", up.name, "endpoint", ep, "error", err)
	}
}

// upstreamFailed answers 504 after a timeout and 502 otherwise.
func (c *h1conn) upstreamFailed(err error, ep netip.AddrPort) bool {
	status := http.StatusBadGateway
	if isTimeout(err) {
		status = http.StatusGatewayTimeout
	}
	c.p.log.Warn("upstream failed", "upstream", c.st.x.key.Name(), "endpoint", ep, "method", string(c.req.method), "uri", string(c.req.target), "status", status, "error", err)
	return c.writeError(status, http.StatusText(status), false)
}

// attempt sends the request to ep and reads the response head into
// c.resp. On success the connection belongs to the caller; on failure it
// is closed. Either way the attempt is recorded in the exchange.
func (c *h1conn) attempt(pool *upstreamPool, ep netip.AddrPort, body reqBody, fresh bool) (*upConn, attemptInfo, error) {
	p := c.p
	x := &c.st.x
	e := pool.endpoint(ep)
	a := attempt{addr: e.name, start: p.now()}
	var info attemptInfo
	fail := func(uc *upConn, err error) (*upConn, attemptInfo, error) {
		if uc != nil {
			info.wrote = uc.written > 0
			info.read = uc.readBytes > 0
			uc.close()
		}
		a.dur = p.now().Sub(a.start)
		a.status = http.StatusBadGateway
		if isTimeout(err) {
			a.status = http.StatusGatewayTimeout
		}
		x.attempts = append(x.attempts, a)
		return nil, info, err
	}
	var uc *upConn
	var err error
	if fresh {
		uc, err = pool.dial(e)
	} else {
		uc, info.reused, err = pool.get(e)
	}
	if err != nil {
		return fail(nil, err)
	}
	p.metrics.conn(info.reused)
	uc.requests++
	uc.written, uc.readBytes = 0, 0
	prm := &pool.params
	// upstream-keepalive-requests: on the connection's last request ask
	// the upstream to close after the response, so the pool drops it.
	last := prm.keepaliveConns <= 0 || prm.keepaliveRequests > 0 && uc.requests >= prm.keepaliveRequests
	if err := c.sendRequest(uc, body, last); err != nil {
		return fail(uc, err)
	}
	head := bstr(c.req.method) == "HEAD"
	for {
		raw, err := readHead(uc.br, c.resp.raw, nil)
		c.resp.raw = raw
		if err != nil {
			return fail(uc, err)
		}
		if !c.resp.parse(head) {
			return fail(uc, errBadResponse)
		}
		// 1xx answers other than 101 are interim: skip them.
		if c.resp.status >= 200 || c.resp.status == http.StatusSwitchingProtocols {
			break
		}
	}
	a.status = c.resp.status
	x.attempts = append(x.attempts, a)
	uc.closeAfter = last || c.resp.close
	return uc, info, nil
}

// discard reads away (a bounded part of) a response that is not relayed
// because the request goes to the next endpoint.
func (c *h1conn) discard(uc *upConn, pool *upstreamPool) {
	x := &c.st.x
	n, err := copyBody(nil, uc.br, &c.resp, 64<<10)
	i := len(x.attempts) - 1
	x.attempts[i].length = n
	x.attempts[i].dur = c.p.now().Sub(x.attempts[i].start)
	if err != nil || uc.closeAfter {
		uc.close()
		return
	}
	pool.put(uc)
}
