package nginxconf

import (
	"strconv"
	"time"
)

// varFunc appends one variable's rendering to b.
type varFunc func(b []byte, v *Vars) []byte

// timeLocalLayout is nginx's $time_local format.
const timeLocalLayout = "02/Jan/2006:15:04:05 -0700"

// lookupVar maps an nginx variable name to its renderer.
func lookupVar(name string) (varFunc, bool) {
	str := func(get func(*Vars) string) varFunc {
		return func(b []byte, v *Vars) []byte { return appendEscaped(b, get(v)) }
	}
	switch name {
	case "remote_addr":
		return str(func(v *Vars) string { return v.RemoteAddr }), true
	case "remote_user":
		return str(func(v *Vars) string { return v.RemoteUser }), true
	case "time_local":
		return func(b []byte, v *Vars) []byte {
			if v.TimeLocal.IsZero() {
				return append(b, '-')
			}
			return v.TimeLocal.AppendFormat(b, timeLocalLayout)
		}, true
	case "request":
		return str(func(v *Vars) string { return v.Request }), true
	case "status":
		return func(b []byte, v *Vars) []byte {
			s := max(v.Status, 0)
			for lim := 100; lim > 1 && s < lim; lim /= 10 {
				b = append(b, '0')
			}
			return strconv.AppendInt(b, int64(s), 10)
		}, true
	case "body_bytes_sent":
		return func(b []byte, v *Vars) []byte { return strconv.AppendInt(b, v.BodyBytesSent, 10) }, true
	case "http_referer":
		return str(func(v *Vars) string { return v.HTTPReferer }), true
	case "http_user_agent":
		return str(func(v *Vars) string { return v.HTTPUserAgent }), true
	case "request_length":
		return func(b []byte, v *Vars) []byte { return strconv.AppendInt(b, v.RequestLength, 10) }, true
	case "request_time":
		return func(b []byte, v *Vars) []byte { return appendSeconds(b, v.RequestTime) }, true
	case "proxy_upstream_name":
		return str(func(v *Vars) string { return v.ProxyUpstreamName }), true
	case "proxy_alternative_upstream_name":
		return str(func(v *Vars) string { return v.ProxyAlternativeUpstreamName }), true
	case "upstream_addr":
		return func(b []byte, v *Vars) []byte {
			return appendList(b, v.UpstreamAddr, appendEscaped)
		}, true
	case "upstream_response_length":
		return func(b []byte, v *Vars) []byte {
			return appendList(b, v.UpstreamResponseLength, appendInt64)
		}, true
	case "upstream_response_time":
		return func(b []byte, v *Vars) []byte {
			return appendList(b, v.UpstreamResponseTime, appendSeconds)
		}, true
	case "upstream_status":
		return func(b []byte, v *Vars) []byte {
			return appendList(b, v.UpstreamStatus, appendInt)
		}, true
	case "req_id":
		return str(func(v *Vars) string { return v.ReqID }), true
	case "host":
		return str(func(v *Vars) string { return v.Host }), true
	case "server_port":
		return str(func(v *Vars) string { return v.ServerPort }), true
	case "scheme":
		return str(func(v *Vars) string { return v.Scheme }), true
	case "request_method":
		return str(func(v *Vars) string { return v.RequestMethod }), true
	case "request_uri":
		return str(func(v *Vars) string { return v.RequestURI }), true
	case "http_x_forwarded_for":
		return str(func(v *Vars) string { return v.HTTPXForwardedFor }), true
	case "namespace":
		return str(func(v *Vars) string { return v.Namespace }), true
	case "ingress_name":
		return str(func(v *Vars) string { return v.IngressName }), true
	case "service_name":
		return str(func(v *Vars) string { return v.ServiceName }), true
	case "service_port":
		return str(func(v *Vars) string { return v.ServicePort }), true
	}
	return nil, false
}

// appendEscaped appends s like nginx's default log escaping: "-" when
// empty; '"', '\\' and bytes outside 0x20..0x7e as \xHH.
func appendEscaped(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendSeconds appends d as seconds with millisecond precision ("0.003"),
// truncating like nginx's "%T.%03M".
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

func appendInt(b []byte, n int) []byte     { return strconv.AppendInt(b, int64(n), 10) }
func appendInt64(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// appendList appends the items separated by ", ", or "-" when there are
// none.
func appendList[T any](b []byte, items []T, item func([]byte, T) []byte) []byte {
	if len(items) == 0 {
		return append(b, '-')
	}
	for i, it := range items {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = item(b, it)
	}
	return b
}
