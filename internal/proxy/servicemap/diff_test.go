package servicemap

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func sp(ns, name string, proto Protocol, eps ...string) ServicePort {
	p := ServicePort{Namespace: ns, Name: name, Protocol: proto, Port: 53, NodePort: 30053,
		ClusterIPs: addrs("10.96.0.10"), ExternalIPs: addrs("198.18.0.100"), Scheduler: "random"}
	for _, e := range eps {
		ap := netip.MustParseAddrPort(e)
		p.Endpoints = append(p.Endpoints, Endpoint{IP: ap.Addr(), Port: ap.Port(), Ready: true, Serving: true, Weight: 1})
	}
	return p
}

func mapOf(ps ...ServicePort) Map {
	m := Map{Ports: map[string]ServicePort{}}
	for _, p := range ps {
		m.Ports[p.Key()] = p
	}
	return m
}

func TestDiff(t *testing.T) {
	a := sp("ns", "a", TCP, "10.244.0.1:80")
	b := sp("ns", "b", TCP, "10.244.0.2:80")
	c := sp("ns", "c", TCP)
	b2 := sp("ns", "b", TCP, "10.244.0.3:80")
	c2 := c
	c2.UserspacePort = 40000
	changed, removed := Diff(mapOf(a, b, c), mapOf(b2, c2, sp("ns", "d", UDP)))
	if want := []string{"ns/b:/TCP", "ns/c:/TCP", "ns/d:/UDP"}; !slices.Equal(changed, want) {
		t.Errorf("changed = %v, want %v", changed, want)
	}
	if want := []string{"ns/a:/TCP"}; !slices.Equal(removed, want) {
		t.Errorf("removed = %v, want %v", removed, want)
	}
	if changed, removed := Diff(mapOf(a, b), mapOf(a, b)); changed != nil || removed != nil {
		t.Errorf("identical maps differ: %v %v", changed, removed)
	}
}

func TestStaleEndpoints(t *testing.T) {
	old := mapOf(
		sp("ns", "dns", UDP, "10.244.0.1:53", "10.244.0.2:53"),
		sp("ns", "gone", UDP, "10.244.0.9:53"),
		sp("ns", "tcp", TCP, "10.244.0.5:53"),
		sp("ns", "sctp", SCTP, "10.244.0.6:53"),
	)
	next := mapOf(
		sp("ns", "dns", UDP, "10.244.0.2:53", "10.244.0.3:53"),
		sp("ns", "tcp", TCP),
	)
	got := StaleEndpoints(old, next)
	ips := addrs("10.96.0.10", "198.18.0.100")
	want := []StaleEndpoint{
		{Key: "ns/dns:/UDP", Protocol: UDP, ServiceIPs: ips, ServicePort: 53, NodePort: 30053, EndpointIP: netip.MustParseAddr("10.244.0.1"), EndpointPort: 53},
		{Key: "ns/gone:/UDP", Protocol: UDP, ServiceIPs: ips, ServicePort: 53, NodePort: 30053, EndpointIP: netip.MustParseAddr("10.244.0.9"), EndpointPort: 53},
		{Key: "ns/tcp:/TCP", Protocol: TCP, ServiceIPs: ips, ServicePort: 53, NodePort: 30053, EndpointIP: netip.MustParseAddr("10.244.0.5"), EndpointPort: 53},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// An endpoint that stops being ready (and is not terminating) is no
	// longer used, so it is stale too.
	notReady := sp("ns", "dns", UDP, "10.244.0.2:53")
	notReady.Endpoints[0].Ready = false
	got = StaleEndpoints(mapOf(sp("ns", "dns", UDP, "10.244.0.2:53", "10.244.0.4:53")), mapOf(notReady))
	if len(got) != 2 || got[0].EndpointIP != netip.MustParseAddr("10.244.0.2") || got[1].EndpointIP != netip.MustParseAddr("10.244.0.4") {
		t.Errorf("got %+v", got)
	}
}
