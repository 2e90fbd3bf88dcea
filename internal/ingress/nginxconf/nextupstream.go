package nginxconf

import (
	"fmt"
	"strings"
)

// NextUpstream says when a failed request is passed to the next upstream
// server (nginx proxy_next_upstream). The zero value is "off".
type NextUpstream struct {
	Error         bool  // error: connection or I/O error with the upstream
	Timeout       bool  // timeout: connect, send or read timed out
	InvalidHeader bool  // invalid_header: empty or invalid response header
	NonIdempotent bool  // non_idempotent: also retry POST, LOCK, PATCH
	Statuses      []int // http_500 ... http_429, in the order given
}

// statusTokens are the http_NNN tokens nginx accepts.
func statusToken(tok string) (int, bool) {
	switch tok {
	case "http_500":
		return 500, true
	case "http_502":
		return 502, true
	case "http_503":
		return 503, true
	case "http_504":
		return 504, true
	case "http_403":
		return 403, true
	case "http_404":
		return 404, true
	case "http_429":
		return 429, true
	}
	return 0, false
}

// parseNextUpstream parses space-separated proxy-next-upstream tokens.
// "off" must stand alone; duplicates are an error.
func parseNextUpstream(v string) (NextUpstream, error) {
	toks := strings.Fields(v)
	if len(toks) == 0 {
		return NextUpstream{}, fmt.Errorf("is empty; use off to disable retries")
	}
	var nu NextUpstream
	seen := map[string]bool{}
	for _, tok := range toks {
		if seen[tok] {
			return NextUpstream{}, fmt.Errorf("repeats %q", tok)
		}
		seen[tok] = true
		switch tok {
		case "off":
			if len(toks) != 1 {
				return NextUpstream{}, fmt.Errorf("combines off with other tokens")
			}
		case "error":
			nu.Error = true
		case "timeout":
			nu.Timeout = true
		case "invalid_header":
			nu.InvalidHeader = true
		case "non_idempotent":
			nu.NonIdempotent = true
		default:
			code, ok := statusToken(tok)
			if !ok {
				return NextUpstream{}, fmt.Errorf("has unknown token %q (want error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent or off)", tok)
			}
			nu.Statuses = append(nu.Statuses, code)
		}
	}
	return nu, nil
}

// RetriesStatus reports whether a response with this status is passed on.
func (nu NextUpstream) RetriesStatus(status int) bool {
	for _, s := range nu.Statuses {
		if s == status {
			return true
		}
	}
	return false
}
