package healthcheck

import (
	"slices"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// changes compares two programmed maps the way kube-proxy's counters see
// Service and EndpointSlice updates: per Service (namespace/name), whether
// its ports changed (added, removed, any field but the endpoints) and
// whether its endpoints did.
type changes struct {
	services, endpoints int
	// triggers are the last-change-trigger-times of the Services whose
	// endpoints changed (zero times left out).
	triggers []time.Time
}

func diffMaps(prev, next servicemap.Map) changes {
	type portsOf map[string]servicemap.ServicePort // by port key
	group := func(m servicemap.Map) map[string]portsOf {
		out := map[string]portsOf{}
		for k, sp := range m.Ports {
			name := sp.Namespace + "/" + sp.Name
			if out[name] == nil {
				out[name] = portsOf{}
			}
			out[name][k] = sp
		}
		return out
	}
	a, b := group(prev), group(next)
	var c changes
	for name, bp := range b {
		ap := a[name]
		svcChanged, epsChanged := len(ap) != len(bp), false
		var trigger time.Time
		for k, sp := range bp {
			old, ok := ap[k]
			if !ok {
				svcChanged = true
				epsChanged = epsChanged || len(sp.Endpoints) > 0
			} else {
				if !slices.Equal(old.Endpoints, sp.Endpoints) {
					epsChanged = true
				}
				o, n := old, sp
				o.Endpoints, n.Endpoints = nil, nil
				if !o.Equal(&n) {
					svcChanged = true
				}
			}
			if sp.TriggerTime.After(trigger) {
				trigger = sp.TriggerTime
			}
		}
		if svcChanged {
			c.services++
		}
		if epsChanged {
			c.endpoints++
			if !trigger.IsZero() {
				c.triggers = append(c.triggers, trigger)
			}
		}
	}
	for name, ap := range a {
		if _, ok := b[name]; ok {
			continue
		}
		c.services++
		for _, sp := range ap {
			if len(sp.Endpoints) > 0 {
				c.endpoints++
				break
			}
		}
	}
	return c
}

// noLocalEndpoints counts the Service ports with a Local traffic policy and
// no local endpoint that can serve: internal (internalTrafficPolicy Local)
// and external (externalTrafficPolicy Local on an externally reachable
// port), as kube-proxy's sync_proxy_rules_no_local_endpoints_total does.
func noLocalEndpoints(m servicemap.Map) (internal, external int) {
	for _, sp := range m.Ports {
		local := false
		for _, ep := range sp.Endpoints {
			if ep.IsLocal && (ep.Ready || ep.Serving) {
				local = true
				break
			}
		}
		if local {
			continue
		}
		if sp.InternalTrafficPolicyLocal {
			internal++
		}
		if sp.ExternalTrafficPolicyLocal && sp.ExternallyAccessible() {
			external++
		}
	}
	return internal, external
}
