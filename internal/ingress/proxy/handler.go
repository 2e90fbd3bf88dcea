package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/fjord-net/fjord/internal/ingress/route"
)

// ServeHTTP routes and proxies one request.
//
// Order: count the request against keep-alive-requests; redirect HTTP to
// HTTPS for hosts with TLS (ssl-redirect, 308 like ingress-nginx); match
// host and the path normalised as nginx does (400 for what nginx refuses;
// 404 when nothing matches and there is no default
// backend); 503 when the backend has no ready endpoints; 413 when the body
// exceeds proxy-body-size; then proxy.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	act := p.cur.Load()
	cfg := &act.snap.Config
	sw := &statusWriter{ResponseWriter: w}
	if cfg.ServerTokens {
		sw.server = p.opts.ServerHeader
	}
	x := &exchange{act: act, cfg: cfg, clientIP: clientIP(r), scheme: "http", port: localPort(r)}
	if r.TLS != nil {
		x.scheme = "https"
	}
	x.reqID = r.Header.Get("X-Request-Id")
	if x.reqID == "" {
		x.reqID = p.newID()
	}
	var be route.Backend
	matched := false
	p.begin()
	defer func() { p.finish(r, sw, x, be, matched, start) }()

	if r.ProtoMajor == 1 {
		if cs := connStateFrom(r.Context()); cs != nil && cs.serve(cfg.KeepAliveRequests) {
			w.Header().Set("Connection", "close")
		}
	}
	path, structural, err := route.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		http.Error(sw, "400 Bad Request", http.StatusBadRequest)
		return
	}
	if structural {
		x.normPath = path
	}
	be, matched = act.snap.Routes.Match(r.Host, path)
	if r.TLS == nil && cfg.SSLRedirect {
		if _, _, ok := act.snap.Routes.TLSHosts(r.Host); ok {
			p.redirect(sw, r)
			return
		}
	}
	if !matched {
		http.Error(sw, "default backend - 404", http.StatusNotFound)
		return
	}
	x.key = KeyOf(be)
	x.eps = act.snap.Upstreams[x.key].Endpoints
	if len(x.eps) == 0 {
		http.Error(sw, "503 Service Temporarily Unavailable: no ready endpoints for "+be.Namespace+"/"+be.Service+":"+be.Port.String(), http.StatusServiceUnavailable)
		return
	}
	if status := prepareBody(sw, r, cfg); status != 0 {
		http.Error(sw, http.StatusText(status), status)
		return
	}
	p.rp.ServeHTTP(sw, r.WithContext(withExchange(r.Context(), x)))
}

// redirect answers with 308 to the same URL over HTTPS.
func (p *Proxy) redirect(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p.opts.HTTPSPort != 443 {
		host += ":" + strconv.Itoa(p.opts.HTTPSPort)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// rewrite sets the upstream request's URL and forwarded headers.
// Incoming X-Forwarded-* headers are not trusted (ReverseProxy removes
// them before rewrite), like ingress-nginx with use-forwarded-headers
// "false", its default.
func rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = x.key.Name() // replaced by the endpoint per attempt
	pr.Out.Host = pr.In.Host
	if x.normPath != "" { // send what was matched (see requestPath)
		pr.Out.URL.Path, pr.Out.URL.RawPath = x.normPath, route.EscapePath(x.normPath)
	}
	h := pr.Out.Header
	h.Set("X-Request-ID", x.reqID)
	h.Set("X-Real-IP", x.clientIP)
	h.Set("X-Forwarded-For", x.clientIP)
	h.Set("X-Forwarded-Host", pr.In.Host)
	h.Set("X-Forwarded-Port", x.port)
	h.Set("X-Forwarded-Proto", x.scheme)
	h.Set("X-Scheme", x.scheme)
}

// upstreamError answers a request whose upstream attempts all failed:
// 504 after a timeout, 502 otherwise, nothing when the client is gone.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	if r.Context().Err() != nil {
		if sw, ok := w.(*statusWriter); ok && sw.status == 0 {
			sw.status = statusClientClosed
		}
		return
	}
	status := http.StatusBadGateway
	if isTimeout(err) {
		status = http.StatusGatewayTimeout
	}
	name := ""
	if x != nil {
		name = x.key.Name()
	}
	p.log.Warn("upstream failed", "upstream", name, "method", r.Method, "uri", r.RequestURI, "status", status, "error", err)
	if errors.Is(err, errNoExchange) {
		status = http.StatusInternalServerError
	}
	http.Error(w, http.StatusText(status), status)
}

// statusClientClosed is nginx's 499: the client closed the connection
// before the response was sent.
const statusClientClosed = 499

// clientIP returns the client's address without port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// localPort returns the port the request arrived on.
func localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			return port
		}
	}
	if r.TLS != nil {
		return "443"
	}
	return "80"
}
