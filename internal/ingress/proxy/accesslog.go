package proxy

import (
	"net/http"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

// logRecord is what the access log and the metrics need of one finished
// request, from either request path. Its strings may point into a
// connection's reusable buffers: record uses them before it returns and
// keeps none.
type logRecord struct {
	start, end    time.Time
	status        int
	bytes         int64 // response body bytes sent
	x             *exchange
	be            route.Backend
	matched       bool
	upstreamName  string // $proxy_upstream_name when matched
	request       string // $request
	method, uri   string
	host          string
	referer       string
	userAgent     string
	xForwardedFor string
	remoteUser    string
	requestLength int64
}

// logState is reusable memory for rendering access log lines.
type logState struct {
	vars nginxconf.Vars
	line []byte
}

// record writes the access log line and updates the metrics for one
// request. It runs when the request is over (for an upgraded connection:
// when the upgraded connection ends).
func (p *Proxy) record(rec *logRecord) {
	x := rec.x
	status := rec.status
	if status == 0 {
		status = http.StatusOK // nothing was written: net/http sends 200
	}
	l := routeLabels{}
	if rec.matched {
		l = routeLabels{rec.be.IngressName, rec.be.Namespace, rec.be.Service}
	}
	p.metrics.observe(l, status, rec.end.Sub(rec.start), x.attempts)
	if p.logs == nil {
		return
	}
	ls := p.logStates.Get().(*logState)
	v := &ls.vars
	*v = nginxconf.Vars{
		RemoteAddr:             x.clientIP,
		RemoteUser:             rec.remoteUser,
		TimeLocal:              rec.start,
		Request:                rec.request,
		Status:                 status,
		BodyBytesSent:          rec.bytes,
		HTTPReferer:            rec.referer,
		HTTPUserAgent:          rec.userAgent,
		RequestLength:          rec.requestLength,
		RequestTime:            rec.end.Sub(rec.start),
		ReqID:                  x.reqID,
		Host:                   rec.host,
		ServerPort:             x.port,
		Scheme:                 x.scheme,
		RequestMethod:          rec.method,
		RequestURI:             rec.uri,
		HTTPXForwardedFor:      rec.xForwardedFor,
		ProxyUpstreamName:      "upstream-default-backend", // ingress-nginx's name when nothing matched
		UpstreamAddr:           v.UpstreamAddr[:0],
		UpstreamStatus:         v.UpstreamStatus[:0],
		UpstreamResponseTime:   v.UpstreamResponseTime[:0],
		UpstreamResponseLength: v.UpstreamResponseLength[:0],
	}
	if rec.matched {
		v.ProxyUpstreamName = rec.upstreamName
		v.Namespace, v.IngressName, v.ServiceName, v.ServicePort = rec.be.Namespace, rec.be.IngressName, rec.be.Service, rec.be.Port.String()
	}
	for _, a := range x.attempts {
		v.UpstreamAddr = append(v.UpstreamAddr, a.addr)
		v.UpstreamStatus = append(v.UpstreamStatus, a.status)
		v.UpstreamResponseTime = append(v.UpstreamResponseTime, a.dur)
		v.UpstreamResponseLength = append(v.UpstreamResponseLength, a.length)
	}
	ls.line = append(x.cfg.LogFormat.Append(ls.line[:0], v), '\n')
	p.logs.line(ls.line)
	*v = nginxconf.Vars{UpstreamAddr: v.UpstreamAddr[:0], UpstreamStatus: v.UpstreamStatus[:0],
		UpstreamResponseTime: v.UpstreamResponseTime[:0], UpstreamResponseLength: v.UpstreamResponseLength[:0]}
	if cap(ls.line) <= 64<<10 {
		p.logStates.Put(ls)
	}
}

// finish records a request served by net/http (HTTP/2).
func (p *Proxy) finish(r *http.Request, sw *statusWriter, x *exchange, be route.Backend, matched bool, start time.Time) {
	rec := logRecord{
		start: start, end: p.now(), status: sw.status, bytes: sw.bytes, x: x, be: be, matched: matched,
		request:       r.Method + " " + r.RequestURI + " " + r.Proto,
		method:        r.Method,
		uri:           r.RequestURI,
		host:          r.Host,
		referer:       r.Header.Get("Referer"),
		userAgent:     r.Header.Get("User-Agent"),
		xForwardedFor: r.Header.Get("X-Forwarded-For"),
		requestLength: requestLength(r),
	}
	if matched {
		rec.upstreamName = x.act.upstreamName(KeyOf(be))
	}
	if u, _, ok := r.BasicAuth(); ok {
		rec.remoteUser = u
	}
	p.record(&rec)
}

// upstreamName returns $proxy_upstream_name for k without formatting it
// when the Snapshot knows the upstream.
func (a *active) upstreamName(k UpstreamKey) string {
	if u := a.ups[k]; u != nil {
		return u.name
	}
	return k.Name()
}

// requestLength approximates nginx's $request_length: request line,
// headers and body as received.
func requestLength(r *http.Request) int64 {
	n := int64(len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2)
	n += int64(len("Host: ") + len(r.Host) + 2)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += int64(len(k) + 2 + len(v) + 2)
		}
	}
	n += 2
	if r.ContentLength > 0 {
		n += r.ContentLength
	}
	return n
}
