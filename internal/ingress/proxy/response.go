package proxy

import (
	"bytes"
)

// response is the parsed head of an upstream response. Like request, its
// slices point into raw, which belongs to the request's per-connection
// state and is reused.
type response struct {
	raw     []byte
	status  int
	reason  []byte
	minor   int
	headers []header
	kinds   []hdrKind

	contentLength int64 // -1 when absent
	chunked       bool
	close         bool // the upstream will close the connection after it
	connTokens    []byte
	hasDate       bool
}

// parse fills r from r.raw. Framing follows RFC 9112 6.3: a response to
// HEAD, 1xx, 204 and 304 have no body; chunked wins over Content-Length
// (and makes the connection unusable afterwards, as the message was
// ambiguous); otherwise Content-Length, else the body runs to the close.
func (r *response) parse(head bool) bool {
	r.headers, r.kinds = r.headers[:0], r.kinds[:0]
	r.contentLength, r.chunked, r.close, r.connTokens, r.hasDate = -1, false, false, nil, false
	line, rest := nextLine(r.raw)
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return false
	}
	switch line[7] {
	case '0':
		r.minor = 0
		r.close = true
	case '1':
		r.minor = 1
	default:
		return false
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return false
	}
	r.status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	r.reason = nil
	if len(line) > 12 {
		if line[12] != ' ' {
			return false
		}
		r.reason = line[13:]
	}
	ambiguous := false
	for len(rest) > 0 {
		var l []byte
		l, rest = nextLine(rest)
		if len(l) == 0 {
			break
		}
		h, ok := parseHeaderLine(l)
		if !ok {
			return false
		}
		k := kindOf(h.name)
		switch k {
		case hContentLength:
			n, ok := parseContentLength(h.value)
			if !ok || r.contentLength >= 0 && r.contentLength != n {
				return false
			}
			r.contentLength = n
		case hTransferEncoding:
			if !hasToken(h.value, "chunked") {
				r.close = true // some other coding: read to the close
			} else {
				r.chunked = true
			}
		case hConnection:
			if r.connTokens != nil {
				ambiguous = true // several Connection headers: keep it simple
			}
			r.connTokens = h.value
		case hDate:
			r.hasDate = true
		}
		r.headers = append(r.headers, h)
		r.kinds = append(r.kinds, k)
	}
	if r.chunked && r.contentLength >= 0 {
		r.contentLength = -1
		ambiguous = true
	}
	if r.connTokens != nil {
		if hasToken(r.connTokens, "close") {
			r.close = true
		} else if r.minor == 0 && hasToken(r.connTokens, "keep-alive") {
			r.close = false
		}
	}
	if ambiguous {
		r.close = true
	}
	if head || r.status < 200 || r.status == 204 || r.status == 304 {
		r.contentLength, r.chunked = 0, false
	}
	if !r.chunked && r.contentLength < 0 {
		r.close = true // delimited by the close
	}
	return true
}

// listedInConnection reports whether name is named by the Connection
// header, which makes it hop-by-hop.
func (r *response) listedInConnection(name []byte) bool {
	return r.connTokens != nil && hasToken(r.connTokens, name)
}
