package route

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// pathKind is how a rule path compares with a request path.
type pathKind int

const (
	kindExact pathKind = iota
	kindPrefix
)

func (k pathKind) String() string {
	if k == kindExact {
		return "Exact"
	}
	return "Prefix"
}

// compilePath validates a rule path and turns it into a map key.
// ImplementationSpecific is treated as Prefix. A Prefix key has its
// trailing slashes removed, so "/" becomes "" and "/foo/" becomes "/foo".
// An empty ImplementationSpecific path means "/".
func compilePath(p string, pt *networkingv1.PathType) (key string, kind pathKind, err error) {
	t := networkingv1.PathTypeImplementationSpecific
	if pt != nil {
		t = *pt
	}
	switch t {
	case networkingv1.PathTypeExact:
		kind = kindExact
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		kind = kindPrefix
		if p == "" && t == networkingv1.PathTypeImplementationSpecific {
			p = "/"
		}
	default:
		return "", 0, fmt.Errorf("unknown pathType %q", t)
	}
	if !strings.HasPrefix(p, "/") {
		return "", 0, fmt.Errorf("path %q must begin with /", p)
	}
	if kind == kindExact {
		return p, kind, nil
	}
	return strings.TrimRight(p, "/"), kind, nil
}

// paths holds the rules of one host.
type paths struct {
	exact  map[string]Backend
	prefix map[string]Backend // keyed by path without trailing slash
}

func newPaths() *paths {
	return &paths{exact: map[string]Backend{}, prefix: map[string]Backend{}}
}

func (ps *paths) table(k pathKind) map[string]Backend {
	if k == kindExact {
		return ps.exact
	}
	return ps.prefix
}

// match returns the backend of the longest matching path. An Exact hit is
// always at least as long as any Prefix hit (it equals the whole request
// path), so it is tried first; Prefix candidates are then tried from the
// whole path down to "/", one map lookup per path element.
func (ps *paths) match(path string) (Backend, bool) {
	if b, ok := ps.exact[path]; ok {
		return b, true
	}
	if len(ps.prefix) == 0 {
		return Backend{}, false
	}
	p := strings.TrimRight(path, "/")
	for {
		if b, ok := ps.prefix[p]; ok {
			return b, true
		}
		if p == "" {
			return Backend{}, false
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			i = 0
		}
		p = p[:i]
	}
}
