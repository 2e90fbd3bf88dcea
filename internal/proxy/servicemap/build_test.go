package servicemap

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestBuild(t *testing.T) {
	web := func() *corev1.Service {
		return svc("default", "web", "10.96.0.10", port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53))
	}
	webSlice := func(eps ...epSpec) *discoveryv1.EndpointSlice {
		return slice("default", "web-abc", "web",
			[]discoveryv1.EndpointPort{eport("http", corev1.ProtocolTCP, 8080), eport("dns", corev1.ProtocolUDP, 5353)}, eps...)
	}
	type check func(t *testing.T, m Map)
	tests := []struct {
		name   string
		svcs   []*corev1.Service
		slices []*discoveryv1.EndpointSlice
		opts   Options
		check  check
	}{{
		name:   "multi-port with named ports and sorted endpoints",
		svcs:   []*corev1.Service{web()},
		slices: []*discoveryv1.EndpointSlice{webSlice(ep("10.244.2.7", "n2"), ep("10.244.1.5", "n1"))},
		opts:   Options{NodeName: "n1"},
		check: func(t *testing.T, m Map) {
			want := []string{"default/web:dns/UDP", "default/web:http/TCP"}
			if got := m.Keys(); !slices.Equal(got, want) {
				t.Fatalf("keys = %v, want %v", got, want)
			}
			http := m.Ports["default/web:http/TCP"]
			wantEps := []Endpoint{
				{IP: netip.MustParseAddr("10.244.1.5"), Port: 8080, NodeName: "n1", Ready: true, Serving: true, Weight: 1, IsLocal: true},
				{IP: netip.MustParseAddr("10.244.2.7"), Port: 8080, NodeName: "n2", Ready: true, Serving: true, Weight: 1},
			}
			if !reflect.DeepEqual(http.Endpoints, wantEps) {
				t.Errorf("http endpoints = %+v, want %+v", http.Endpoints, wantEps)
			}
			if http.Port != 80 || http.Scheduler != "random" || !slices.Equal(http.ClusterIPs, addrs("10.96.0.10")) {
				t.Errorf("http = %+v", http)
			}
			dns := m.Ports["default/web:dns/UDP"]
			if dns.Endpoints[0].Port != 5353 || dns.Protocol != UDP {
				t.Errorf("dns = %+v", dns)
			}
			if len(m.Problems) != 0 {
				t.Errorf("problems: %v", m.Problems)
			}
		},
	}, {
		name: "slices labelled headless or for another proxy are left out, as kube-proxy's informer does",
		svcs: []*corev1.Service{web()},
		slices: func() []*discoveryv1.EndpointSlice {
			headless := webSlice(ep("10.244.2.7", "n2"))
			headless.Name, headless.Labels[HeadlessLabel] = "web-headless", ""
			other := webSlice(ep("10.244.3.9", "n3"))
			other.Name, other.Labels[ServiceProxyNameLabel] = "web-other", "foo-bar"
			return []*discoveryv1.EndpointSlice{webSlice(ep("10.244.1.5", "n1")), headless, other}
		}(),
		check: func(t *testing.T, m Map) {
			http := m.Ports["default/web:http/TCP"]
			if len(http.Endpoints) != 1 || http.Endpoints[0].IP != netip.MustParseAddr("10.244.1.5") {
				t.Errorf("endpoints = %+v, want only the unlabelled slice's", http.Endpoints)
			}
		},
	}, {
		name: "endpoint ports match by name and protocol",
		svcs: []*corev1.Service{web()},
		slices: []*discoveryv1.EndpointSlice{slice("default", "web-x", "web",
			[]discoveryv1.EndpointPort{eport("http", corev1.ProtocolUDP, 9999)}, ep("10.244.1.5", ""))},
		check: func(t *testing.T, m Map) {
			for _, k := range m.Keys() {
				if n := len(m.Ports[k].Endpoints); n != 0 {
					t.Errorf("%s has %d endpoints, want 0", k, n)
				}
			}
		},
	}, {
		name: "slices of other services, namespaces and FQDN slices are ignored",
		svcs: []*corev1.Service{web()},
		slices: func() []*discoveryv1.EndpointSlice {
			other := slice("default", "api-1", "api", []discoveryv1.EndpointPort{eport("http", corev1.ProtocolTCP, 1)}, ep("10.244.9.9", ""))
			otherNS := slice("prod", "web-1", "web", []discoveryv1.EndpointPort{eport("http", corev1.ProtocolTCP, 1)}, ep("10.244.9.8", ""))
			fqdn := webSlice(ep("10.244.9.7", ""))
			fqdn.AddressType = discoveryv1.AddressTypeFQDN
			return []*discoveryv1.EndpointSlice{other, otherNS, fqdn}
		}(),
		check: func(t *testing.T, m Map) {
			if n := len(m.Ports["default/web:http/TCP"].Endpoints); n != 0 {
				t.Errorf("got %d endpoints, want 0", n)
			}
		},
	}, {
		name: "not ready and not serving endpoints are dropped; duplicates keep the first slice by name",
		svcs: []*corev1.Service{web()},
		slices: []*discoveryv1.EndpointSlice{
			slice("default", "web-b", "web", []discoveryv1.EndpointPort{eport("http", corev1.ProtocolTCP, 8080)},
				epSpec{ip: "10.244.1.5", node: "b"}),
			slice("default", "web-a", "web", []discoveryv1.EndpointPort{eport("http", corev1.ProtocolTCP, 8080)},
				epSpec{ip: "10.244.1.5", node: "a"},
				epSpec{ip: "10.244.1.6", ready: ptr(false), serving: ptr(false)},
				epSpec{ip: "10.244.1.7", ready: ptr(false), serving: ptr(true), terminating: ptr(true)}),
		},
		check: func(t *testing.T, m Map) {
			eps := m.Ports["default/web:http/TCP"].Endpoints
			if len(eps) != 2 || eps[0].NodeName != "a" || eps[1].IP != netip.MustParseAddr("10.244.1.7") {
				t.Fatalf("endpoints = %+v", eps)
			}
			if eps[1].Ready || !eps[1].Serving || !eps[1].Terminating {
				t.Errorf("conditions of terminating endpoint = %+v", eps[1])
			}
		},
	}, {
		name: "NodePort, external IPs, LB IPs, policies, affinity",
		svcs: func() []*corev1.Service {
			s := svc("default", "lb", "10.96.0.20", corev1.ServicePort{Name: "", Protocol: corev1.ProtocolTCP, Port: 443, NodePort: 30443})
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalIPs = []string{"198.18.0.200", "198.18.0.100"}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.18.0.250"}, {Hostname: "lb.example"}}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
			return []*corev1.Service{s}
		}(),
		check: func(t *testing.T, m Map) {
			sp := m.Ports["default/lb:/TCP"]
			if sp.NodePort != 30443 || !slices.Equal(sp.ExternalIPs, addrs("198.18.0.100", "198.18.0.200")) ||
				!slices.Equal(sp.LoadBalancerIPs, addrs("198.18.0.250")) {
				t.Errorf("addresses: %+v", sp)
			}
			if !sp.ExternalTrafficPolicyLocal || !sp.InternalTrafficPolicyLocal {
				t.Errorf("policies: %+v", sp)
			}
			if sp.SessionAffinity != (SessionAffinity{ClientIP: true, TimeoutSeconds: 60}) {
				t.Errorf("affinity = %+v", sp.SessionAffinity)
			}
		},
	}, {
		name: "NodePort is ignored on ClusterIP services; default affinity timeout",
		svcs: func() []*corev1.Service {
			s := svc("default", "c", "10.96.0.30", corev1.ServicePort{Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080})
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			return []*corev1.Service{s}
		}(),
		check: func(t *testing.T, m Map) {
			sp := m.Ports["default/c:/TCP"]
			if sp.NodePort != 0 || sp.SessionAffinity.TimeoutSeconds != DefaultAffinityTimeoutSeconds {
				t.Errorf("%+v", sp)
			}
		},
	}, {
		name: "headless, ExternalName and other proxies' services have no ports",
		svcs: func() []*corev1.Service {
			h := svc("default", "h", "None", port("", corev1.ProtocolTCP, 80))
			e := svc("default", "e", "", port("", corev1.ProtocolTCP, 80))
			e.Spec.Type = corev1.ServiceTypeExternalName
			e.Spec.ClusterIPs = nil
			other := svc("default", "other", "10.96.0.20", port("", corev1.ProtocolTCP, 80))
			other.Labels = map[string]string{ServiceProxyNameLabel: "foo-bar"}
			labelled := svc("default", "labelled", "10.96.0.21", port("", corev1.ProtocolTCP, 80))
			labelled.Labels = map[string]string{HeadlessLabel: ""}
			return []*corev1.Service{h, e, other, labelled}
		}(),
		check: func(t *testing.T, m Map) {
			if len(m.Ports) != 0 {
				t.Errorf("ports: %v", m.Keys())
			}
		},
	}, {
		name: "scheduler annotation, default and invalid values",
		svcs: func() []*corev1.Service {
			a := svc("default", "a", "10.96.0.1", port("", corev1.ProtocolTCP, 80))
			a.Annotations = map[string]string{SchedulerAnnotation: "maglev"}
			b := svc("default", "b", "10.96.0.2", port("", corev1.ProtocolTCP, 80))
			b.Annotations = map[string]string{SchedulerAnnotation: "dh"}
			c := svc("default", "c", "10.96.0.3", port("", corev1.ProtocolTCP, 80))
			return []*corev1.Service{a, b, c}
		}(),
		opts: Options{DefaultScheduler: "rr"},
		check: func(t *testing.T, m Map) {
			got := []string{m.Ports["default/a:/TCP"].Scheduler, m.Ports["default/b:/TCP"].Scheduler, m.Ports["default/c:/TCP"].Scheduler}
			if !slices.Equal(got, []string{"maglev", "rr", "rr"}) {
				t.Errorf("schedulers = %v", got)
			}
			if len(m.Problems) != 1 || m.Problems[0].Object != "Service default/b" ||
				!strings.Contains(m.Problems[0].Field, SchedulerAnnotation) {
				t.Errorf("problems = %v", m.Problems)
			}
		},
	}, {
		name: "weights annotation",
		svcs: func() []*corev1.Service {
			s := web()
			s.Annotations = map[string]string{WeightsAnnotation: "10.244.1.5=3, 10.244.2.7=0,bogus,10.244.3.1=x,10.244.3.2=70000"}
			return []*corev1.Service{s}
		}(),
		slices: []*discoveryv1.EndpointSlice{webSlice(ep("10.244.1.5", ""), ep("10.244.2.7", ""), ep("10.244.3.3", ""))},
		check: func(t *testing.T, m Map) {
			sp := m.Ports["default/web:http/TCP"]
			var w []int
			for _, e := range sp.Endpoints {
				w = append(w, e.Weight)
			}
			if !slices.Equal(w, []int{3, 0, 1}) {
				t.Errorf("weights = %v", w)
			}
			if len(sp.ClusterEndpoints()) != 2 {
				t.Errorf("quiesced endpoint is selected: %+v", sp.ClusterEndpoints())
			}
			if len(m.Problems) != 3 {
				t.Errorf("problems = %v", m.Problems)
			}
		},
	}, {
		name: "bad addresses are reported and skipped",
		svcs: func() []*corev1.Service {
			s := svc("default", "x", "10.96.0.9", port("", corev1.ProtocolTCP, 80))
			s.Spec.ExternalIPs = []string{"nope", "198.18.0.9"}
			return []*corev1.Service{s}
		}(),
		check: func(t *testing.T, m Map) {
			if sp := m.Ports["default/x:/TCP"]; !slices.Equal(sp.ExternalIPs, addrs("198.18.0.9")) {
				t.Errorf("external = %v", sp.ExternalIPs)
			}
			if len(m.Problems) != 1 || m.Problems[0].Field != "spec.externalIPs[0]" {
				t.Errorf("problems = %v", m.Problems)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, Build(tt.svcs, tt.slices, tt.opts))
		})
	}
}

func TestBuildIsOrderIndependent(t *testing.T) {
	svcs := []*corev1.Service{
		svc("default", "a", "10.96.0.1", port("", corev1.ProtocolTCP, 80)),
		svc("default", "b", "10.96.0.2", port("", corev1.ProtocolTCP, 80)),
	}
	ports := []discoveryv1.EndpointPort{eport("", corev1.ProtocolTCP, 80)}
	sl := []*discoveryv1.EndpointSlice{
		slice("default", "a-1", "a", ports, ep("10.244.1.2", ""), ep("10.244.1.1", "")),
		slice("default", "a-2", "a", ports, ep("10.244.0.9", "")),
		slice("default", "b-1", "b", ports, ep("10.244.1.1", "")),
	}
	want := Build(svcs, sl, Options{})
	got := Build([]*corev1.Service{svcs[1], svcs[0]}, []*discoveryv1.EndpointSlice{sl[2], sl[1], sl[0]}, Options{})
	if changed, removed := Diff(want, got); len(changed)+len(removed) != 0 {
		t.Errorf("order changed the map: changed %v removed %v", changed, removed)
	}
}

func TestSelection(t *testing.T) {
	mk := func(ip string, ready, serving, terminating, local bool) Endpoint {
		return Endpoint{IP: netip.MustParseAddr(ip), Port: 80, Ready: ready, Serving: serving, Terminating: terminating, IsLocal: local, Weight: 1}
	}
	ips := func(eps []Endpoint) []string {
		var out []string
		for _, e := range eps {
			out = append(out, e.IP.String())
		}
		return out
	}
	tests := []struct {
		name           string
		eps            []Endpoint
		cluster, local []string
	}{
		{"ready win", []Endpoint{mk("10.244.0.1", true, true, false, true), mk("10.244.0.2", false, true, true, false)},
			[]string{"10.244.0.1"}, []string{"10.244.0.1"}},
		{"fallback to serving terminating", []Endpoint{mk("10.244.0.1", false, true, true, false), mk("10.244.0.2", false, true, false, false)},
			[]string{"10.244.0.1"}, nil},
		{"local fallback is separate", []Endpoint{mk("10.244.0.1", true, true, false, false), mk("10.244.0.2", false, true, true, true)},
			[]string{"10.244.0.1"}, []string{"10.244.0.2"}},
		{"none", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := ServicePort{Endpoints: tt.eps}
			if got := ips(sp.ClusterEndpoints()); !slices.Equal(got, tt.cluster) {
				t.Errorf("cluster = %v, want %v", got, tt.cluster)
			}
			if got := ips(sp.LocalEndpoints()); !slices.Equal(got, tt.local) {
				t.Errorf("local = %v, want %v", got, tt.local)
			}
		})
	}
}
