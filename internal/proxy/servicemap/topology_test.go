package servicemap

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// hinted is a ready endpoint on node with zone and node hints.
func hinted(ip, node string, zones, nodes []string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}
	if zones != nil || nodes != nil {
		e.Hints = &discoveryv1.EndpointHints{}
		for _, z := range zones {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: z})
		}
		for _, n := range nodes {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: n})
		}
	}
	return e
}

func TestTopologyHints(t *testing.T) {
	a, b, c := []string{"zone-a"}, []string{"zone-b"}, []string{"zone-c"}
	for _, tc := range []struct {
		name       string
		node, zone string
		eps        []discoveryv1.Endpoint
		want       []string
	}{
		{"zone hints: only this zone's endpoints", "n2", "zone-b",
			[]discoveryv1.Endpoint{hinted("10.244.1.1", "n1", a, nil), hinted("10.244.2.1", "n2", b, nil), hinted("10.244.3.1", "n3", c, nil)},
			[]string{"10.244.2.1"}},
		{"one endpoint without hints: hints ignored", "n2", "zone-b",
			[]discoveryv1.Endpoint{hinted("10.244.1.1", "n1", a, nil), hinted("10.244.2.1", "n2", b, nil), hinted("10.244.3.1", "n3", nil, nil)},
			[]string{"10.244.1.1", "10.244.2.1", "10.244.3.1"}},
		{"no endpoint hinted for this zone: hints ignored", "n2", "zone-x",
			[]discoveryv1.Endpoint{hinted("10.244.1.1", "n1", a, nil), hinted("10.244.2.1", "n2", b, nil)},
			[]string{"10.244.1.1", "10.244.2.1"}},
		{"node without a zone label: zone hints ignored", "n2", "",
			[]discoveryv1.Endpoint{hinted("10.244.1.1", "n1", a, nil), hinted("10.244.2.1", "n2", b, nil)},
			[]string{"10.244.1.1", "10.244.2.1"}},
		{"node hints (PreferSameNode) win over zone hints", "n2", "zone-a",
			[]discoveryv1.Endpoint{hinted("10.244.1.1", "n1", a, []string{"n1"}), hinted("10.244.2.1", "n2", a, []string{"n2"})},
			[]string{"10.244.2.1"}},
		{"no endpoint for this node: zone hints", "n3", "zone-a",
			[]discoveryv1.Endpoint{hinted("10.244.1.1", "n1", a, []string{"n1"}), hinted("10.244.2.1", "n2", b, []string{"n2"})},
			[]string{"10.244.1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := slice("default", "web-1", "web", []discoveryv1.EndpointPort{eport("", corev1.ProtocolTCP, 80)})
			es.Endpoints = tc.eps
			m := Build([]*corev1.Service{svc("default", "web", "10.96.0.10", port("", corev1.ProtocolTCP, 80))},
				[]*discoveryv1.EndpointSlice{es}, Options{NodeName: tc.node, NodeZone: tc.zone})
			sp := m.Ports["default/web:/TCP"]
			var got []string
			for _, ep := range sp.ClusterEndpoints() {
				got = append(got, ep.IP.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("cluster endpoints %v, want %v", got, tc.want)
			}
			if len(sp.Endpoints) != len(tc.eps) {
				t.Fatalf("hints must not drop endpoints from the map (ETP=Local picks ignore them): %v", sp.Endpoints)
			}
		})
	}
}
