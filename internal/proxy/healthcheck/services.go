package healthcheck

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// ServiceHealth is what one healthCheckNodePort answers for.
type ServiceHealth struct {
	Namespace, Name string
	Port            uint16
	// LocalEndpoints counts the distinct IPs of the Service's ready
	// endpoints on this node, over all its ports (kube-proxy's
	// LocalReadyEndpoints: a pod serving two ports is one endpoint).
	// Terminating endpoints are not ready, so a node left with only those
	// answers 503.
	LocalEndpoints int
}

// Services returns the health-check ports m calls for, sorted by namespace
// and name.
func Services(m servicemap.Map) []ServiceHealth {
	type nsName struct{ ns, name string }
	byName := map[nsName]*ServiceHealth{}
	ips := map[nsName]map[netip.Addr]bool{}
	for _, sp := range m.Ports {
		if sp.HealthCheckNodePort == 0 {
			continue
		}
		k := nsName{sp.Namespace, sp.Name}
		if byName[k] == nil {
			byName[k] = &ServiceHealth{Namespace: sp.Namespace, Name: sp.Name, Port: sp.HealthCheckNodePort}
			ips[k] = map[netip.Addr]bool{}
		}
		for _, ep := range sp.Endpoints {
			if ep.IsLocal && ep.Ready {
				ips[k][ep.IP] = true
			}
		}
	}
	out := make([]ServiceHealth, 0, len(byName))
	for k, s := range byName {
		s.LocalEndpoints = len(ips[k])
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b ServiceHealth) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
