package proxy

import (
	"bufio"
	"bytes"
	"errors"
)

// maxHeadBytes bounds a response head (status line plus headers), like
// net/http's MaxHeaderBytes of 1 MiB. Request heads are bounded by
// headLimits instead.
const maxHeadBytes = 1 << 20

var (
	errHeadTooLarge   = errors.New("proxy: message head too large")
	errRequestLineBig = errors.New("proxy: request line too large")
	errBadHead        = errors.New("proxy: malformed message head")
)

// headLimits are nginx's request-head buffers (client-header-buffer-size,
// large-client-header-buffers): the head is read into a first buffer;
// a line that does not fit in what is left of the current buffer moves,
// whole, into a fresh large buffer, so no line may be longer than one
// large buffer and there are at most count of them. The zero value means
// no request limits (maxHeadBytes).
type headLimits struct {
	first, size, count int
}

// headAccount tracks where the lines of one head would sit in nginx's
// buffers.
type headAccount struct {
	lim       *headLimits
	capacity  int // of the current buffer
	pos       int // bytes used in it
	used      int // large buffers taken
	firstLine bool
}

// add places a complete line of n bytes (with its line end). It returns
// errRequestLineBig (nginx: 414) or errHeadTooLarge (nginx: 400 "Request
// Header Or Cookie Too Large") when it does not fit.
func (a *headAccount) add(n int) error {
	defer func() { a.firstLine = false }()
	if a.pos+n <= a.capacity {
		a.pos += n
		return nil
	}
	if n > a.lim.size || a.used == a.lim.count {
		return a.tooLarge()
	}
	a.used++
	a.capacity, a.pos = a.lim.size, n
	return nil
}

// partial checks a line still being read: n bytes so far.
func (a *headAccount) partial(n int) error {
	if n > a.lim.size && n > a.capacity-a.pos {
		return a.tooLarge()
	}
	return nil
}

func (a *headAccount) tooLarge() error {
	if a.firstLine {
		return errRequestLineBig
	}
	return errHeadTooLarge
}

// readHead appends one HTTP/1.x message head, up to and including the
// empty line that ends it, to raw (which the caller reuses between
// messages) and returns it. Copying the head out of the bufio.Reader lets
// the parsers hand out sub-slices that stay valid while the body is read.
// Empty lines before the first line are skipped, as RFC 9112 allows. lim
// bounds a request head as nginx does; nil bounds it to maxHeadBytes.
func readHead(br *bufio.Reader, raw []byte, lim *headLimits) ([]byte, error) {
	raw = raw[:0]
	lineStart := 0
	var acct *headAccount
	if lim != nil && lim.size > 0 {
		acct = &headAccount{lim: lim, capacity: lim.first, firstLine: true}
	}
	for {
		frag, err := br.ReadSlice('\n')
		if acct == nil && len(raw)+len(frag) > maxHeadBytes {
			return raw, errHeadTooLarge
		}
		if acct != nil && err == bufio.ErrBufferFull {
			if perr := acct.partial(len(raw) - lineStart + len(frag)); perr != nil {
				return raw, perr
			}
		}
		raw = append(raw, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return raw, err
		}
		line := raw[lineStart:]
		if isEmptyLine(line) && lineStart == 0 {
			raw = raw[:0] // leading CRLF between messages
			continue
		}
		if acct != nil {
			if aerr := acct.add(len(line)); aerr != nil {
				return raw, aerr
			}
		}
		if isEmptyLine(line) {
			return raw, nil
		}
		lineStart = len(raw)
	}
}

func isEmptyLine(l []byte) bool {
	return len(l) == 1 || len(l) == 2 && l[0] == '\r'
}

// header is one header field; both slices point into a message's raw
// head.
type header struct {
	name, value []byte
}

// nextLine splits the first line (without its CRLF or LF) off b.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// parseHeaderLine splits "Name: value" with the value's optional
// whitespace trimmed. It rejects what RFC 9112 says to reject: empty or
// non-token names, whitespace before the colon, obsolete line folding,
// and control characters in the value.
func parseHeaderLine(line []byte) (header, bool) {
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return header{}, false // folding
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return header{}, false
	}
	name := line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return header{}, false
		}
	}
	v := line[colon+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return header{}, false
		}
	}
	return header{name: name, value: v}, true
}

// isTokenChar reports whether c may appear in an RFC 9110 token (header
// names, methods).
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// parseContentLength parses a Content-Length value: digits only, no sign,
// at most 18 of them.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v contains token,
// ignoring case.
func hasToken[T string | []byte](v []byte, token T) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		item = bytes.TrimSpace(item)
		if len(item) == len(token) && equalFoldBS(item, token) {
			return true
		}
	}
	return false
}

// eqFold compares a header name with a canonical lower-case name.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFoldBS compares ASCII case-insensitively without converting.
func equalFoldBS[T string | []byte](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
