package proxy

import (
	"bytes"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/route"
)

// reqState is the per-request state of the hand-written path, reused by
// the connection for each of its requests.
type reqState struct {
	x       exchange
	status  int    // status sent to the client (0 = none yet)
	bytes   int64  // response body bytes sent
	host    string // the request's host: Host, or an absolute-form target's
	fwd     []byte // the origin-form target sent upstream (requestPath)
	tried   []netip.AddrPort
	body    []byte // the buffered request body
	scratch []byte // copy buffer for re-chunked response bodies
	idBuf   [32]byte
}

// serveRequest answers c.req: the same order as Proxy.ServeHTTP (count
// against keep-alive-requests; ssl-redirect; route, 404, 503; 413; proxy).
// It reports whether the connection may serve another request.
func (c *h1conn) serveRequest() (keep bool) {
	p := c.p
	q := &c.req
	start := p.now()
	act := p.cur.Load()
	cfg := &act.snap.Config
	st := &c.st
	st.status, st.bytes = 0, 0
	x := &st.x
	*x = exchange{act: act, cfg: cfg, clientIP: c.ip, scheme: c.scheme, port: c.port, attempts: x.attempts[:0]}
	if id := q.get(hRequestID); len(id) > 0 {
		x.reqID = bstr(id)
	} else if p.opts.NewRequestID != nil {
		x.reqID = p.newID()
	} else {
		x.reqID = bstr(randomID(st.idBuf[:]))
	}
	keep = !q.close && c.params.idle > 0
	if max := cfg.KeepAliveRequests; max > 0 && c.served >= max {
		keep = false
	}
	host := bstr(q.host)
	path, absHost, fwd, ok := requestPath(q.target)
	st.fwd = fwd
	if !ok {
		c.writeError(http.StatusBadRequest, "400 Bad Request", false)
		return false
	}
	if absHost != "" {
		host = absHost // as net/http does for an absolute-form target
	}
	st.host = host
	be, matched := act.snap.Routes.Match(host, path)
	var up *upstreamInfo
	p.begin()
	defer func() { c.finish(start, be, matched, up) }()

	// Answers given without reading the body close the connection, as
	// the unread body stands between this request and the next.
	early := keep && !q.hasBody()
	if c.scheme == "http" && cfg.SSLRedirect {
		if _, _, ok := act.snap.Routes.TLSHosts(host); ok {
			return c.redirect(host, early)
		}
	}
	if !matched {
		return c.writeError(http.StatusNotFound, "default backend - 404", early)
	}
	x.key = KeyOf(be)
	up = act.ups[x.key]
	if up == nil || len(up.eps) == 0 {
		return c.writeError(http.StatusServiceUnavailable, "503 Service Temporarily Unavailable: no ready endpoints for "+be.Namespace+"/"+be.Service+":"+be.Port.String(), early)
	}
	x.eps = up.eps
	body, status := c.readBody(cfg)
	if status != 0 {
		return c.writeError(status, http.StatusText(status), false)
	}
	if body.stream != nil {
		keep = false // the rest of a large body is streamed; no resend, no reuse
	}
	return c.proxy(up, body, keep)
}

// requestPath splits a request-target: the path routing matches (the
// target's path normalised as nginx does, route.NormalizePath), the host of
// an absolute-form target, and the origin-form target to send upstream. The
// upstream gets the client's own form when normalising only decoded it, and
// the normalised path (re-encoded, with the query) when a dot segment or a
// doubled slash was resolved or a fragment dropped, so that it sees what was
// matched. ok is false for a target nginx answers with 400: not a path nor
// an absolute URI (also "*"), a bad escape, %00, ".." above the root. The
// common origin-form target without escapes or dot segments costs nothing.
func requestPath(target []byte) (path, host string, fwd []byte, ok bool) {
	t, origin := target, target
	if len(t) == 0 || t[0] != '/' {
		u, err := url.ParseRequestURI(string(target))
		if err != nil || u.Host == "" {
			return "", "", nil, false
		}
		host = u.Host
		origin = upstreamTarget(target)
		t = origin
	}
	end, frag := len(t), false
	for i, ch := range t {
		if ch == '?' || ch == '#' {
			end, frag = i, ch == '#'
			break
		}
	}
	norm, structural, err := route.NormalizePath(bstr(t[:end]))
	if err != nil {
		return "", "", nil, false
	}
	if !structural && !frag {
		return norm, host, origin, true
	}
	fwd = append([]byte(nil), route.EscapePath(norm)...)
	if end < len(t) && t[end] == '?' {
		q := t[end:]
		if i := bytes.IndexByte(q, '#'); i >= 0 {
			q = q[:i]
		}
		fwd = append(fwd, q...)
	}
	return norm, host, fwd, true
}

// redirect answers with 308 to the same URL over HTTPS.
func (c *h1conn) redirect(host string, keep bool) bool {
	h := host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if c.p.opts.HTTPSPort != 443 {
		h += ":" + itoa(c.p.opts.HTTPSPort)
	}
	target := c.req.target
	if len(target) == 0 || target[0] != '/' {
		if u, err := url.ParseRequestURI(string(target)); err == nil {
			target = []byte(u.RequestURI())
		}
	}
	loc := "https://" + h + string(target)
	body := ""
	if m := bstr(c.req.method); m == "GET" || m == "HEAD" {
		body = "<a href=\"" + htmlEscape(loc) + "\">Permanent Redirect</a>.\n\n"
	}
	return c.writeSimple(http.StatusPermanentRedirect, "text/html; charset=utf-8", body, keep, "Location", loc)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// finish records the request.
func (c *h1conn) finish(start time.Time, be route.Backend, matched bool, up *upstreamInfo) {
	q := &c.req
	rec := logRecord{
		start: start, end: c.p.now(), status: c.st.status, bytes: c.st.bytes, x: &c.st.x, be: be, matched: matched,
		request:       bstr(q.line),
		method:        bstr(q.method),
		uri:           bstr(q.target),
		host:          c.st.host,
		referer:       bstr(q.get(hReferer)),
		userAgent:     bstr(q.get(hUserAgent)),
		xForwardedFor: bstr(q.get(hXForwardedFor)),
		requestLength: int64(len(q.raw)),
	}
	if q.contentLength > 0 {
		rec.requestLength += q.contentLength
	} else if q.chunked {
		rec.requestLength += int64(len(c.st.body))
	}
	if matched {
		if up != nil {
			rec.upstreamName = up.name
		} else {
			rec.upstreamName = KeyOf(be).Name()
		}
	}
	if auth := q.get(hAuthorization); len(auth) > 0 {
		rec.remoteUser = basicAuthUser(bstr(auth))
	}
	c.p.record(&rec)
}

// basicAuthUser returns the user of a Basic Authorization header, like
// http.Request.BasicAuth.
func basicAuthUser(auth string) string {
	r := http.Request{Header: http.Header{"Authorization": {auth}}}
	u, _, _ := r.BasicAuth()
	return u
}
