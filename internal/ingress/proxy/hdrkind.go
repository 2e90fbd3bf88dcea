package proxy

// hdrKind classifies a header name once, at parse time, so the request
// and response paths decide what to forward without comparing names
// again.
type hdrKind uint8

const (
	hOther hdrKind = iota
	hHost
	hContentLength
	hTransferEncoding
	hConnection
	hUpgrade
	hHopByHop // Keep-Alive, Proxy-Connection, TE, Trailer, Proxy-Authenticate, Proxy-Authorization
	hExpect
	hRequestID
	hUserAgent
	hReferer
	hXForwardedFor
	hReplaced // X-Forwarded-Host/-Port/-Proto, X-Real-IP, X-Scheme, Forwarded: set by the proxy
	hAuthorization
	hDate
	hIdempotencyKey // Idempotency-Key, X-Idempotency-Key
	hServer
)

// kindOf classifies a header name, ignoring case.
func kindOf(name []byte) hdrKind {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return hHopByHop
		}
	case 4:
		if eqFold(name, "host") {
			return hHost
		}
		if eqFold(name, "date") {
			return hDate
		}
	case 6:
		if eqFold(name, "expect") {
			return hExpect
		}
		if eqFold(name, "server") {
			return hServer
		}
	case 7:
		switch {
		case eqFold(name, "upgrade"):
			return hUpgrade
		case eqFold(name, "trailer"):
			return hHopByHop
		case eqFold(name, "referer"):
			return hReferer
		}
	case 8:
		if eqFold(name, "x-scheme") {
			return hReplaced
		}
	case 9:
		if eqFold(name, "x-real-ip") {
			return hReplaced
		}
		if eqFold(name, "forwarded") {
			return hReplaced
		}
	case 10:
		switch {
		case eqFold(name, "connection"):
			return hConnection
		case eqFold(name, "keep-alive"):
			return hHopByHop
		case eqFold(name, "user-agent"):
			return hUserAgent
		}
	case 12:
		if eqFold(name, "x-request-id") {
			return hRequestID
		}
	case 13:
		if eqFold(name, "authorization") {
			return hAuthorization
		}
	case 14:
		if eqFold(name, "content-length") {
			return hContentLength
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return hXForwardedFor
		}
		if eqFold(name, "idempotency-key") {
			return hIdempotencyKey
		}
	case 16:
		if eqFold(name, "proxy-connection") {
			return hHopByHop
		}
		if eqFold(name, "x-forwarded-host") {
			return hReplaced
		}
		if eqFold(name, "x-forwarded-port") {
			return hReplaced
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			return hTransferEncoding
		}
		if eqFold(name, "x-forwarded-proto") {
			return hReplaced
		}
		if eqFold(name, "x-idempotency-key") {
			return hIdempotencyKey
		}
	case 18:
		if eqFold(name, "proxy-authenticate") {
			return hHopByHop
		}
	case 19:
		if eqFold(name, "proxy-authorization") {
			return hHopByHop
		}
	}
	return hOther
}
