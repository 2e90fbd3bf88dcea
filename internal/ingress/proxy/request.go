package proxy

import (
	"bytes"
	"net/http"
)

// request is the parsed head of one HTTP/1.x request on the hand-written
// path. Every slice points into raw, which belongs to the connection and
// is reused for its next request; a request is therefore valid only until
// the connection reads the next one.
type request struct {
	raw     []byte
	line    []byte // "GET /x HTTP/1.1", nginx's $request
	method  []byte
	target  []byte // request-target as sent
	minor   int    // HTTP/1.minor
	headers []header
	kinds   []hdrKind // kinds[i] classifies headers[i]

	host          []byte
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool // the client asked to close after this request
	upgrade       bool // Connection: upgrade with an Upgrade header
	expect100     bool
	connTokens    []byte // the Connection header's value(s), for hop-by-hop names
}

// parseError carries the status a malformed request is answered with.
type parseError struct {
	status int
	msg    string
}

func (e *parseError) Error() string { return e.msg }

func badRequest(msg string) *parseError { return &parseError{status: http.StatusBadRequest, msg: msg} }

// parse fills r from r.raw, a head read by readHead. It accepts what
// net/http's server accepts for HTTP/1.0 and 1.1 and rejects the
// ambiguous framing that enables request smuggling (Content-Length with
// Transfer-Encoding, differing Content-Lengths, codings other than
// chunked).
func (r *request) parse() *parseError {
	r.headers, r.kinds = r.headers[:0], r.kinds[:0]
	r.method, r.target, r.minor = nil, nil, 1
	r.host, r.connTokens = nil, nil
	r.contentLength = -1
	r.chunked, r.close, r.upgrade, r.expect100 = false, false, false, false

	line, rest := nextLine(r.raw)
	r.line = line
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return badRequest("malformed request line")
	}
	r.method = line[:sp1]
	for _, c := range r.method {
		if !isTokenChar(c) {
			return badRequest("invalid method")
		}
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1+1 {
		return badRequest("malformed request line")
	}
	r.target = line[sp1+1 : sp2]
	for _, c := range r.target {
		if c <= ' ' || c == 0x7f {
			return badRequest("invalid request target")
		}
	}
	switch string(line[sp2+1:]) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
		r.close = true // unless keep-alive, below
	default:
		return &parseError{status: http.StatusHTTPVersionNotSupported, msg: "unsupported protocol version"}
	}

	var upgradeHdr, teSeen bool
	for len(rest) > 0 {
		var l []byte
		l, rest = nextLine(rest)
		if len(l) == 0 {
			break
		}
		h, ok := parseHeaderLine(l)
		if !ok {
			return badRequest("malformed header")
		}
		k := kindOf(h.name)
		switch k {
		case hHost:
			if r.host != nil {
				return badRequest("too many Host headers")
			}
			r.host = h.value
		case hContentLength:
			n, ok := parseContentLength(h.value)
			if !ok || r.contentLength >= 0 && r.contentLength != n {
				return badRequest("bad Content-Length")
			}
			r.contentLength = n
		case hTransferEncoding:
			if teSeen || !eqFold(h.value, "chunked") {
				return &parseError{status: http.StatusNotImplemented, msg: "unsupported transfer encoding"}
			}
			teSeen, r.chunked = true, true
		case hConnection:
			if r.connTokens == nil {
				r.connTokens = h.value
			} else {
				r.connTokens = nil // several Connection headers: look at each below
				for i, kk := range r.kinds {
					if kk == hConnection {
						r.connTokens = append(r.connTokens[:len(r.connTokens):len(r.connTokens)], r.headers[i].value...)
						r.connTokens = append(r.connTokens, ',')
					}
				}
				r.connTokens = append(r.connTokens, h.value...)
			}
		case hUpgrade:
			upgradeHdr = len(h.value) > 0
		case hExpect:
			if !eqFold(h.value, "100-continue") {
				return &parseError{status: http.StatusExpectationFailed, msg: "unsupported Expect"}
			}
			r.expect100 = r.minor == 1
		}
		r.headers = append(r.headers, h)
		r.kinds = append(r.kinds, k)
	}
	if r.host == nil && r.minor == 1 {
		return badRequest("missing required Host header")
	}
	if r.chunked && r.contentLength >= 0 {
		return badRequest("both Content-Length and Transfer-Encoding")
	}
	if r.chunked && r.minor == 0 {
		return badRequest("Transfer-Encoding in HTTP/1.0")
	}
	if r.connTokens != nil {
		if hasToken(r.connTokens, "close") {
			r.close = true
		} else if r.minor == 0 && hasToken(r.connTokens, "keep-alive") {
			r.close = false
		}
		r.upgrade = upgradeHdr && hasToken(r.connTokens, "upgrade")
	}
	return nil
}

// hasBody reports whether a body follows the head.
func (r *request) hasBody() bool { return r.chunked || r.contentLength > 0 }

// get returns the first header of kind k, or nil.
func (r *request) get(k hdrKind) []byte {
	for i, kk := range r.kinds {
		if kk == k {
			return r.headers[i].value
		}
	}
	return nil
}

// listedInConnection reports whether name is one of the Connection
// header's tokens, which makes it hop-by-hop (RFC 9110 7.6.1).
func (r *request) listedInConnection(name []byte) bool {
	if r.connTokens == nil {
		return false
	}
	return hasToken(r.connTokens, name)
}
