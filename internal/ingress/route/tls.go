package route

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
)

// secretRef names the TLS Secret for a host.
type secretRef struct {
	namespace, name string
}

// TLSHosts returns the TLS Secret that covers host (Host header, port
// allowed), for SNI and for deciding whether to redirect HTTP to HTTPS.
// An exact TLS host beats a "*." wildcard TLS host, which covers exactly
// one extra label. The Secret lives in the namespace of its Ingress.
func (t *Table) TLSHosts(host string) (secretNamespace, secretName string, ok bool) {
	h := normalizeRequestHost(host)
	if r, found := t.tlsExact[h]; found {
		return r.namespace, r.name, true
	}
	if k, found := wildcardKey(h); found {
		if r, found := t.tlsWildcard[k]; found {
			return r.namespace, r.name, true
		}
	}
	return "", "", false
}

// addTLS records the spec.tls entries of ing; older Ingresses win.
func (b *builder) addTLS(ing *networkingv1.Ingress) {
	for _, tls := range ing.Spec.TLS {
		if tls.SecretName == "" {
			b.skip(ing, "tls entry for %v has no secretName", tls.Hosts)
			continue
		}
		if len(tls.Hosts) == 0 {
			b.skip(ing, "tls entry with secret %q lists no hosts; default certificates are not supported", tls.SecretName)
			continue
		}
		ref := secretRef{namespace: ing.Namespace, name: tls.SecretName}
		for _, host := range tls.Hosts {
			h, wild, err := parseRuleHost(host)
			if err != nil {
				b.skip(ing, "tls: %v", err)
				continue
			}
			m := b.t.tlsExact
			if wild {
				m = b.t.tlsWildcard
			}
			if prev, taken := m[h]; taken {
				if prev != ref {
					b.t.Conflicts = append(b.t.Conflicts, fmt.Sprintf(
						"%s: tls host %q secret %q ignored, older ingress uses %s/%s", ingressID(ing), host, tls.SecretName, prev.namespace, prev.name))
				}
				continue
			}
			m[h] = ref
		}
	}
}
