package route

// Table is an immutable routing table built from a set of Ingresses. Its
// zero value routes nothing. Conflicts and Skipped are informational and
// must not be modified.
type Table struct {
	exact    map[string]*paths // by lower-case host
	wildcard map[string]*paths // by the suffix after "*."
	anyHost  *paths            // rules without a host; nil if none

	defaultBackend *Backend

	tlsExact    map[string]secretRef
	tlsWildcard map[string]secretRef

	// Conflicts describes every rule, default backend or TLS entry that
	// lost to an older Ingress, sorted.
	Conflicts []string
	// Skipped describes input that was ignored because it is invalid or
	// unsupported (for example resource backends), sorted.
	Skipped []string
}

// Match returns the backend for a request. host is the Host header (or
// :authority), with or without port; path is the request's path as
// NormalizePath returns it (decoded, slashes merged, dot segments
// resolved): matching a raw path would let "/api/../internal" reach the
// /api backend. ok is false when nothing, not even a default backend, matches.
func (t *Table) Match(host, path string) (Backend, bool) {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if ps := t.hostPaths(normalizeRequestHost(host)); ps != nil {
		if b, ok := ps.match(path); ok {
			return b, true
		}
	}
	if t.defaultBackend != nil {
		return *t.defaultBackend, true
	}
	return Backend{}, false
}

// hostPaths picks the most specific host entry with any rule: exact host,
// then single-label wildcard, then rules without host.
func (t *Table) hostPaths(host string) *paths {
	if ps, ok := t.exact[host]; ok {
		return ps
	}
	if k, ok := wildcardKey(host); ok {
		if ps, ok := t.wildcard[k]; ok {
			return ps
		}
	}
	return t.anyHost
}
