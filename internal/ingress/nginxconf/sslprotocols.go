package nginxconf

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// parseSSLProtocols parses ssl-protocols. Only TLSv1.2 and TLSv1.3 are
// accepted; older protocols are rejected rather than silently dropped.
func parseSSLProtocols(v string) ([]uint16, error) {
	toks := strings.Fields(v)
	if len(toks) == 0 {
		return nil, fmt.Errorf("lists no protocol (allowed: TLSv1.2, TLSv1.3)")
	}
	var out []uint16
	for _, tok := range toks {
		var ver uint16
		switch tok {
		case "TLSv1.2":
			ver = tls.VersionTLS12
		case "TLSv1.3":
			ver = tls.VersionTLS13
		default:
			return nil, fmt.Errorf("has unsupported protocol %q (allowed: TLSv1.2, TLSv1.3)", tok)
		}
		if !slices.Contains(out, ver) {
			out = append(out, ver)
		}
	}
	slices.Sort(out)
	return out, nil
}
