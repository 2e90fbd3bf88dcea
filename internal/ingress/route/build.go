package route

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// Build compiles the Ingresses of the given class into a Table. isDefault
// says whether class is the cluster's default IngressClass, in which case
// Ingresses that name no class are taken too. The input is not modified.
func Build(ingresses []*networkingv1.Ingress, class string, isDefault bool) *Table {
	return BuildSelected(ingresses, func(ing *networkingv1.Ingress) bool { return classMatches(ing, class, isDefault) })
}

// BuildSelected compiles the Ingresses for which selected returns true,
// for controllers that serve several classes (see ClassSelector).
func BuildSelected(ingresses []*networkingv1.Ingress, selected func(*networkingv1.Ingress) bool) *Table {
	b := builder{
		t: &Table{
			exact:       map[string]*paths{},
			wildcard:    map[string]*paths{},
			tlsExact:    map[string]secretRef{},
			tlsWildcard: map[string]secretRef{},
		},
		owner: map[string]string{},
	}
	for _, ing := range sortedByAge(ingresses) {
		if !selected(ing) {
			continue
		}
		b.add(ing)
	}
	sort.Strings(b.t.Conflicts)
	sort.Strings(b.t.Skipped)
	return b.t
}

// sortedByAge returns the Ingresses oldest first; ties are broken by
// namespace, then name, so the order (and hence conflict resolution) is
// deterministic.
func sortedByAge(in []*networkingv1.Ingress) []*networkingv1.Ingress {
	out := make([]*networkingv1.Ingress, 0, len(in))
	for _, ing := range in {
		if ing != nil {
			out = append(out, ing)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

// builder accumulates a Table; owner remembers which Ingress claimed each
// route key, for conflict messages.
type builder struct {
	t     *Table
	owner map[string]string
}

func ingressID(ing *networkingv1.Ingress) string {
	return ing.Namespace + "/" + ing.Name
}

func (b *builder) skip(ing *networkingv1.Ingress, format string, args ...any) {
	b.t.Skipped = append(b.t.Skipped, ingressID(ing)+": "+fmt.Sprintf(format, args...))
}

func (b *builder) add(ing *networkingv1.Ingress) {
	id := ingressID(ing)
	if db := ing.Spec.DefaultBackend; db != nil {
		if be, err := toBackend(ing, db); err != nil {
			b.skip(ing, "defaultBackend: %v", err)
		} else if b.t.defaultBackend != nil {
			b.t.Conflicts = append(b.t.Conflicts, fmt.Sprintf(
				"%s: defaultBackend ignored, %s/%s of older ingress is used", id, b.t.defaultBackend.Namespace, b.t.defaultBackend.IngressName))
		} else {
			b.t.defaultBackend = &be
		}
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		ps, hostLabel, err := b.hostEntry(rule.Host)
		if err != nil {
			b.skip(ing, "rule: %v", err)
			continue
		}
		for _, p := range rule.HTTP.Paths {
			key, kind, err := compilePath(p.Path, p.PathType)
			if err != nil {
				b.skip(ing, "host %q: %v", hostLabel, err)
				continue
			}
			be, err := toBackend(ing, &p.Backend)
			if err != nil {
				b.skip(ing, "host %q path %q: %v", hostLabel, p.Path, err)
				continue
			}
			m := ps.table(kind)
			ownerKey := hostLabel + "\x00" + kind.String() + "\x00" + key
			if _, taken := m[key]; taken {
				if prev := b.owner[ownerKey]; prev != id {
					b.t.Conflicts = append(b.t.Conflicts, fmt.Sprintf(
						"%s: host %q path %q (%s) ignored, already defined by older ingress %s", id, hostLabel, p.Path, kind, prev))
				} else {
					b.skip(ing, "host %q path %q (%s) defined twice; first one used", hostLabel, p.Path, kind)
				}
				continue
			}
			m[key] = be
			b.owner[ownerKey] = id
		}
	}
	b.addTLS(ing)
}

// hostEntry returns (creating it if needed) the path set for a rule host,
// and the host as written for messages.
func (b *builder) hostEntry(host string) (*paths, string, error) {
	if host == "" {
		if b.t.anyHost == nil {
			b.t.anyHost = newPaths()
		}
		return b.t.anyHost, "", nil
	}
	h, wild, err := parseRuleHost(host)
	if err != nil {
		return nil, "", err
	}
	m, label := b.t.exact, h
	if wild {
		m, label = b.t.wildcard, "*."+h
	}
	ps, ok := m[h]
	if !ok {
		ps = newPaths()
		m[h] = ps
	}
	return ps, label, nil
}

// toBackend converts an IngressBackend; only Service backends are
// supported.
func toBackend(ing *networkingv1.Ingress, ib *networkingv1.IngressBackend) (Backend, error) {
	if ib.Resource != nil {
		return Backend{}, fmt.Errorf("resource backends (%s %s) are not supported", ib.Resource.Kind, ib.Resource.Name)
	}
	s := ib.Service
	if s == nil || s.Name == "" {
		return Backend{}, fmt.Errorf("backend has no service")
	}
	port := Port{Number: s.Port.Number, Name: strings.TrimSpace(s.Port.Name)}
	if (port.Number == 0) == (port.Name == "") {
		return Backend{}, fmt.Errorf("service %s: exactly one of port number and port name must be set", s.Name)
	}
	return Backend{Namespace: ing.Namespace, Service: s.Name, Port: port, IngressName: ing.Name}, nil
}
