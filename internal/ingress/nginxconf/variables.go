package nginxconf

import (
	"strconv"
	"strings"
	"time"
)

// varFunc appends one variable's rendering to b.
type varFunc func(b *strings.Builder, v *Vars)

// timeLocalLayout is nginx's $time_local format.
const timeLocalLayout = "02/Jan/2006:15:04:05 -0700"

// lookupVar maps an nginx variable name to its renderer.
func lookupVar(name string) (varFunc, bool) {
	str := func(get func(*Vars) string) varFunc {
		return func(b *strings.Builder, v *Vars) { writeEscaped(b, get(v)) }
	}
	switch name {
	case "remote_addr":
		return str(func(v *Vars) string { return v.RemoteAddr }), true
	case "remote_user":
		return str(func(v *Vars) string { return v.RemoteUser }), true
	case "time_local":
		return func(b *strings.Builder, v *Vars) {
			if v.TimeLocal.IsZero() {
				b.WriteByte('-')
				return
			}
			b.WriteString(v.TimeLocal.Format(timeLocalLayout))
		}, true
	case "request":
		return str(func(v *Vars) string { return v.Request }), true
	case "status":
		return func(b *strings.Builder, v *Vars) {
			s := strconv.Itoa(max(v.Status, 0))
			for i := len(s); i < 3; i++ {
				b.WriteByte('0')
			}
			b.WriteString(s)
		}, true
	case "body_bytes_sent":
		return func(b *strings.Builder, v *Vars) { b.WriteString(strconv.FormatInt(v.BodyBytesSent, 10)) }, true
	case "http_referer":
		return str(func(v *Vars) string { return v.HTTPReferer }), true
	case "http_user_agent":
		return str(func(v *Vars) string { return v.HTTPUserAgent }), true
	case "request_length":
		return func(b *strings.Builder, v *Vars) { b.WriteString(strconv.FormatInt(v.RequestLength, 10)) }, true
	case "request_time":
		return func(b *strings.Builder, v *Vars) { writeSeconds(b, v.RequestTime) }, true
	case "proxy_upstream_name":
		return str(func(v *Vars) string { return v.ProxyUpstreamName }), true
	case "proxy_alternative_upstream_name":
		return str(func(v *Vars) string { return v.ProxyAlternativeUpstreamName }), true
	case "upstream_addr":
		return func(b *strings.Builder, v *Vars) {
			writeList(b, len(v.UpstreamAddr), func(i int) { writeEscaped(b, v.UpstreamAddr[i]) })
		}, true
	case "upstream_response_length":
		return func(b *strings.Builder, v *Vars) {
			writeList(b, len(v.UpstreamResponseLength), func(i int) {
				b.WriteString(strconv.FormatInt(v.UpstreamResponseLength[i], 10))
			})
		}, true
	case "upstream_response_time":
		return func(b *strings.Builder, v *Vars) {
			writeList(b, len(v.UpstreamResponseTime), func(i int) { writeSeconds(b, v.UpstreamResponseTime[i]) })
		}, true
	case "upstream_status":
		return func(b *strings.Builder, v *Vars) {
			writeList(b, len(v.UpstreamStatus), func(i int) { b.WriteString(strconv.Itoa(v.UpstreamStatus[i])) })
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

// writeEscaped writes s like nginx's default log escaping: "-" when
// empty; '"', '\\' and bytes outside 0x20..0x7e as \xHH.
func writeEscaped(b *strings.Builder, s string) {
	if s == "" {
		b.WriteByte('-')
		return
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
}

// writeSeconds writes d as seconds with millisecond precision ("0.003"),
// truncating like nginx's "%T.%03M".
func writeSeconds(b *strings.Builder, d time.Duration) {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	b.WriteString(strconv.FormatInt(ms/1000, 10))
	b.WriteByte('.')
	frac := strconv.FormatInt(ms%1000, 10)
	b.WriteString(strings.Repeat("0", 3-len(frac)))
	b.WriteString(frac)
}

// writeList writes n items separated by ", ", or "-" when n is 0.
func writeList(b *strings.Builder, n int, item func(i int)) {
	if n == 0 {
		b.WriteByte('-')
		return
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		item(i)
	}
}
