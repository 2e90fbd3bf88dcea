package servicemap

// ClusterEndpoints returns the endpoints traffic under the Cluster policy
// goes to, as kube-proxy picks them: the ready endpoints or, when none is
// ready, the serving and terminating ones. Quiesced endpoints (weight 0)
// are left out. The result keeps the sorted order.
func (sp *ServicePort) ClusterEndpoints() []Endpoint {
	return pick(sp.Endpoints, false)
}

// LocalEndpoints is ClusterEndpoints restricted to this node, with the
// same fallback applied to the local endpoints alone.
func (sp *ServicePort) LocalEndpoints() []Endpoint {
	return pick(sp.Endpoints, true)
}

func pick(eps []Endpoint, localOnly bool) []Endpoint {
	usable := func(ep Endpoint) bool { return ep.Weight > 0 && (!localOnly || ep.IsLocal) }
	var out []Endpoint
	for _, ep := range eps {
		if usable(ep) && ep.Ready && (localOnly || !ep.OutOfTopology) {
			out = append(out, ep)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, ep := range eps {
		if usable(ep) && ep.Serving && ep.Terminating {
			out = append(out, ep)
		}
	}
	return out
}
