package route

import (
	"sort"
)

// Backends returns every distinct backend the table can route to (rules
// and default backend), sorted, so a proxy can resolve endpoints for
// exactly the Services in use. IngressName is left empty: one Service
// port may be named by several Ingresses.
func (t *Table) Backends() []Backend {
	seen := map[Backend]bool{}
	t.eachBackend(func(b Backend) {
		b.IngressName = ""
		seen[b] = true
	})
	return sortedBackends(seen)
}

// IngressBackends returns every distinct backend the table can route to
// together with the Ingress that routes there (IngressName set), sorted:
// the label sets a proxy counts requests under.
func (t *Table) IngressBackends() []Backend {
	seen := map[Backend]bool{}
	t.eachBackend(func(b Backend) { seen[b] = true })
	return sortedBackends(seen)
}

// eachBackend calls f for the default backend and every rule's backend.
func (t *Table) eachBackend(f func(Backend)) {
	if t.defaultBackend != nil {
		f(*t.defaultBackend)
	}
	each := func(ps *paths) {
		if ps == nil {
			return
		}
		for _, b := range ps.exact {
			f(b)
		}
		for _, b := range ps.prefix {
			f(b)
		}
	}
	for _, ps := range t.exact {
		each(ps)
	}
	for _, ps := range t.wildcard {
		each(ps)
	}
	each(t.anyHost)
}

// sortedBackends returns the keys of seen ordered by Ingress, then backend.
func sortedBackends(seen map[Backend]bool) []Backend {
	out := make([]Backend, 0, len(seen))
	for b := range seen {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IngressName != out[j].IngressName {
			return out[i].IngressName < out[j].IngressName
		}
		return out[i].String() < out[j].String()
	})
	return out
}

// SecretName names a TLS Secret referenced by the table.
type SecretName struct {
	Namespace, Name string
}

// TLSSecrets returns every Secret the table's TLS entries refer to,
// sorted and without duplicates.
func (t *Table) TLSSecrets() []SecretName {
	seen := map[SecretName]bool{}
	for _, r := range t.tlsExact {
		seen[SecretName{r.namespace, r.name}] = true
	}
	for _, r := range t.tlsWildcard {
		seen[SecretName{r.namespace, r.name}] = true
	}
	out := make([]SecretName, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}
