package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

// finish writes the access log line and updates the metrics for one
// request. It runs when ServeHTTP returns (for an upgraded connection:
// when the upgraded connection ends).
func (p *Proxy) finish(r *http.Request, sw *statusWriter, x *exchange, be route.Backend, matched bool, start time.Time) {
	end := p.now()
	status := sw.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	ing, ns, svc := "", "", ""
	if matched {
		ing, ns, svc = be.IngressName, be.Namespace, be.Service
	}
	p.metrics.observe(ing, ns, svc, status, end.Sub(start), x.attempts)
	if p.opts.AccessLog == nil {
		return
	}
	v := nginxconf.Vars{
		RemoteAddr:        x.clientIP,
		TimeLocal:         start,
		Request:           r.Method + " " + r.RequestURI + " " + r.Proto,
		Status:            status,
		BodyBytesSent:     sw.bytes,
		HTTPReferer:       r.Header.Get("Referer"),
		HTTPUserAgent:     r.Header.Get("User-Agent"),
		RequestLength:     requestLength(r),
		RequestTime:       end.Sub(start),
		ReqID:             x.reqID,
		Host:              r.Host,
		ServerPort:        x.port,
		Scheme:            x.scheme,
		RequestMethod:     r.Method,
		RequestURI:        r.RequestURI,
		HTTPXForwardedFor: r.Header.Get("X-Forwarded-For"),
	}
	if u, _, ok := r.BasicAuth(); ok {
		v.RemoteUser = u
	}
	v.ProxyUpstreamName = "upstream-default-backend" // ingress-nginx's name when nothing matched
	if matched {
		v.ProxyUpstreamName = KeyOf(be).Name()
		v.Namespace, v.IngressName, v.ServiceName, v.ServicePort = be.Namespace, be.IngressName, be.Service, be.Port.String()
	}
	for _, a := range x.attempts {
		v.UpstreamAddr = append(v.UpstreamAddr, a.addr)
		v.UpstreamStatus = append(v.UpstreamStatus, a.status)
		v.UpstreamResponseTime = append(v.UpstreamResponseTime, a.dur)
		v.UpstreamResponseLength = append(v.UpstreamResponseLength, a.length)
	}
	line := x.cfg.LogFormat.Render(v)
	p.logMu.Lock()
	p.opts.AccessLog.Write(append([]byte(line), '\n'))
	p.logMu.Unlock()
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

func statusLabel(status int) string { return strconv.Itoa(status) }
