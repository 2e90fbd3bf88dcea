package route

import (
	"fmt"
	"net"
	"strings"
)

// normalizeRequestHost lower-cases a Host header value and strips its port
// and any trailing dot. IPv6 literals keep their brackets removed.
func normalizeRequestHost(host string) string {
	if !strings.Contains(host, ":") {
		// No port: skip SplitHostPort, whose error would be allocated on
		// every request.
	} else if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}

// parseRuleHost validates an Ingress rule or TLS host. It returns the
// lower-cased host and whether it is a wildcard; for a wildcard, the
// returned host is the suffix after "*." (for "*.foo.com": "foo.com").
func parseRuleHost(host string) (h string, wildcard bool, err error) {
	h = strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.HasPrefix(h, "*.") {
		h = h[2:]
		wildcard = true
	}
	if h == "" || strings.Contains(h, "*") {
		return "", false, fmt.Errorf("invalid host %q: a wildcard must be the whole first label, as in *.foo.com", host)
	}
	if strings.Contains(h, ":") {
		return "", false, fmt.Errorf("invalid host %q: ports and IPv6 addresses are not allowed", host)
	}
	return h, wildcard, nil
}

// wildcardKey returns the suffix a single-label wildcard would have to
// carry to match host: "bar.foo.com" -> "foo.com". ok is false when host
// has only one label.
func wildcardKey(host string) (string, bool) {
	i := strings.IndexByte(host, '.')
	if i <= 0 || i == len(host)-1 {
		return "", false
	}
	return host[i+1:], true
}
