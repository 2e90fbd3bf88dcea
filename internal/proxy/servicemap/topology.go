package servicemap

import (
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// Topology-aware routing, as kube-proxy does it: when every ready endpoint of a
// Service port carries node hints (trafficDistribution PreferSameNode) and one is
// hinted for this node, cluster-wide traffic goes only to the endpoints hinted for
// this node; else, when every ready endpoint carries zone hints (PreferSameZone,
// topology-aware hints) and one is hinted for this node's zone, only to those. In
// any other case hints are ignored. Endpoints left out are marked OutOfTopology;
// ETP/ITP=Local picks do not look at hints.

type endpointHints struct {
	zones, nodes []string
}

func hintsOf(e discoveryv1.Endpoint) endpointHints {
	var h endpointHints
	if e.Hints == nil {
		return h
	}
	for _, z := range e.Hints.ForZones {
		h.zones = append(h.zones, z.Name)
	}
	for _, n := range e.Hints.ForNodes {
		h.nodes = append(h.nodes, n.Name)
	}
	return h
}

// applyTopology marks the endpoints (with their hints, index for index) that
// this node's cluster-wide traffic must not reach.
func applyTopology(eps []Endpoint, hints []endpointHints, node, zone string) {
	allNode, forNode, allZone, forZone, anyReady := true, false, true, false, false
	for i, ep := range eps {
		if !ep.Ready {
			continue
		}
		anyReady = true
		h := hints[i]
		if len(h.nodes) == 0 {
			allNode = false
		} else if slices.Contains(h.nodes, node) {
			forNode = true
		}
		if len(h.zones) == 0 {
			allZone = false
		} else if zone != "" && slices.Contains(h.zones, zone) {
			forZone = true
		}
	}
	var keep func(endpointHints) bool
	switch {
	case !anyReady:
		return
	case allNode && forNode:
		keep = func(h endpointHints) bool { return slices.Contains(h.nodes, node) }
	case allZone && forZone:
		keep = func(h endpointHints) bool { return slices.Contains(h.zones, zone) }
	default:
		return
	}
	for i := range eps {
		eps[i].OutOfTopology = !keep(hints[i])
	}
}
