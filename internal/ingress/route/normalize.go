package route

import (
	"errors"
	"strings"
)

// Errors of NormalizePath; a proxy answers each with 400, as nginx does.
var (
	ErrBadEscape   = errors.New("route: invalid percent-escape in path")
	ErrNULInPath   = errors.New("route: %00 in path")
	ErrAboveRoot   = errors.New("route: path climbs above the root")
	ErrNotAbsolute = errors.New("route: path does not begin with /")
)

// NormalizePath turns the path of a request-target as the client sent it
// (percent-encoded, without query or fragment) into the path routing
// matches, the way nginx does before it picks a location
// (ngx_http_parse_complex_uri with merge_slashes on, on Linux):
//
//   - every %XX is decoded, and a decoded "/" or "." counts as one typed
//     (so "/api/%2e%2e/x" and "/api%2F..%2Fx" are "/x"); a malformed
//     escape, %00 or a NUL byte is an error;
//   - runs of slashes become one ("//api" is "/api");
//   - "." segments are dropped and ".." removes the segment before it; a
//     trailing "." or ".." leaves a trailing slash ("/a/." is "/a/",
//     "/a/b/.." is "/a/"); ".." above the root is an error;
//   - anything else, backslashes, ";", "..." and dots inside a segment
//     included, is an ordinary character.
//
// structural reports whether a dot segment was resolved or slashes merged,
// that is whether path differs from the mere decoding of escaped. A proxy
// may forward the client's target unchanged when it is false (its decoding
// is exactly what was matched) and must forward EscapePath(path) when it is
// true. A path without '%', "//" and "/." is returned as is, without
// allocating.
func NormalizePath(escaped string) (path string, structural bool, err error) {
	if escaped == "" || escaped[0] != '/' {
		return "", false, ErrNotAbsolute
	}
	if !needsNormalizing(escaped) {
		return escaped, false, nil
	}
	out := make([]byte, 0, len(escaped))
	// segStart is where the segment being written begins in out (just
	// after its slash).
	segStart := 1
	out = append(out, '/')
	for i := 1; i < len(escaped); i++ {
		c := escaped[i]
		if c == 0 {
			return "", false, ErrNULInPath
		}
		if c == '%' {
			if i+2 >= len(escaped) {
				return "", false, ErrBadEscape
			}
			hi, ok1 := unhex(escaped[i+1])
			lo, ok2 := unhex(escaped[i+2])
			if !ok1 || !ok2 {
				return "", false, ErrBadEscape
			}
			c = hi<<4 | lo
			if c == 0 {
				return "", false, ErrNULInPath
			}
			i += 2
		}
		if c != '/' {
			out = append(out, c)
			continue
		}
		// A slash ends the segment out[segStart:].
		var ok bool
		out, segStart, ok = endSegment(out, segStart, &structural)
		if !ok {
			return "", false, ErrAboveRoot
		}
	}
	// The last segment, not followed by a slash: a dot segment there
	// leaves the slash before it.
	switch string(out[segStart:]) {
	case ".":
		out, structural = out[:segStart], true
	case "..":
		out, structural = out[:segStart], true
		if segStart == 1 {
			return "", false, ErrAboveRoot
		}
		out = out[:lastSegmentStart(out[:segStart-1])]
	}
	return string(out), structural, nil
}

// endSegment handles the slash after out[segStart:]: an empty segment (a
// doubled slash) or "." is dropped, ".." drops itself and the segment
// before it; otherwise the slash is kept. It returns out and where the next
// segment starts, and false when ".." has nothing to drop.
func endSegment(out []byte, segStart int, structural *bool) ([]byte, int, bool) {
	switch string(out[segStart:]) {
	case "", ".":
		*structural = true
		return out[:segStart], segStart, true
	case "..":
		*structural = true
		if segStart == 1 {
			return nil, 0, false
		}
		out = out[:lastSegmentStart(out[:segStart-1])]
		return out, len(out), true
	}
	out = append(out, '/')
	return out, len(out), true
}

// lastSegmentStart returns the index just after the last slash of p,
// which begins with a slash.
func lastSegmentStart(p []byte) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return i + 1
		}
	}
	return 1
}

// needsNormalizing reports whether p has an escape, a doubled slash or a
// segment starting with a dot; only those can change.
func needsNormalizing(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', 0:
			return true
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return true
			}
		}
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// EscapePath percent-encodes a normalised path for a request line: every
// byte but the RFC 3986 path characters (unreserved, sub-delims, ':', '@')
// and '/' is escaped, so that decoding the result gives path back and the
// result is itself a normalised path.
func EscapePath(path string) string {
	n := 0
	for i := 0; i < len(path); i++ {
		if !isPathChar(path[i]) {
			n++
		}
	}
	if n == 0 {
		return path
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(path) + 2*n)
	for i := 0; i < len(path); i++ {
		c := path[i]
		if isPathChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func isPathChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}
