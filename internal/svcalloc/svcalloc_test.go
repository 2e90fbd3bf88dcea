package svcalloc

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Test ranges: services 10.96.0.0/16, node ports 30000-32767.

func svc(name, ip string, typ corev1.ServiceType, nodePorts ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip}}
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	for i, np := range nodePorts {
		if i > 0 {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + string(rune('a'+i)), Port: 81 + int32(i), Protocol: corev1.ProtocolTCP})
		}
		s.Spec.Ports[i].NodePort = np
	}
	return s
}

func TestAssignsLowestFreeAndKeepsExisting(t *testing.T) {
	stored := []*corev1.Service{svc("a", "10.96.0.2", corev1.ServiceTypeClusterIP), svc("np", "10.96.0.3", corev1.ServiceTypeNodePort, 30000)}
	b := svc("b", "", corev1.ServiceTypeClusterIP)
	again := svc("a", "", corev1.ServiceTypeClusterIP)
	np2 := svc("np2", "", corev1.ServiceTypeNodePort, 0)
	if err := Assign(Default(), stored, []*corev1.Service{b, again, np2}); err != nil {
		t.Fatal(err)
	}
	if again.Spec.ClusterIP != "10.96.0.2" {
		t.Errorf("re-applied service lost its IP: %s", again.Spec.ClusterIP)
	}
	if b.Spec.ClusterIP != "10.96.0.4" && b.Spec.ClusterIP != "10.96.0.5" {
		t.Errorf("b got %s", b.Spec.ClusterIP)
	}
	if b.Spec.ClusterIP == np2.Spec.ClusterIP {
		t.Errorf("two services got %s", b.Spec.ClusterIP)
	}
	if np2.Spec.Ports[0].NodePort != 30001 {
		t.Errorf("node port %d, want the lowest free 30001", np2.Spec.Ports[0].NodePort)
	}
	if len(b.Spec.ClusterIPs) != 1 || b.Spec.ClusterIPs[0] != b.Spec.ClusterIP {
		t.Errorf("clusterIPs %v", b.Spec.ClusterIPs)
	}
}

func TestReappliedNodePortServiceKeepsPorts(t *testing.T) {
	stored := []*corev1.Service{svc("np", "10.96.0.9", corev1.ServiceTypeNodePort, 31234)}
	again := svc("np", "", corev1.ServiceTypeNodePort, 0)
	if err := Assign(Default(), stored, []*corev1.Service{again}); err != nil {
		t.Fatal(err)
	}
	if again.Spec.Ports[0].NodePort != 31234 || again.Spec.ClusterIP != "10.96.0.9" {
		t.Fatalf("got %s %d", again.Spec.ClusterIP, again.Spec.Ports[0].NodePort)
	}
}

func TestRejections(t *testing.T) {
	stored := []*corev1.Service{svc("a", "10.96.0.2", corev1.ServiceTypeNodePort, 30005)}
	cases := []struct {
		in   *corev1.Service
		want string
	}{
		{svc("b", "10.96.0.2", corev1.ServiceTypeClusterIP), "spec.clusterIP: Invalid value: \"10.96.0.2\": already allocated to Service default/a"},
		{svc("b", "10.97.0.2", corev1.ServiceTypeClusterIP), "not in the service range"},
		{svc("a", "10.96.0.3", corev1.ServiceTypeNodePort, 30005), "field is immutable"},
		{svc("b", "", corev1.ServiceTypeNodePort, 30005), "spec.ports[0].nodePort: Invalid value: 30005: already allocated"},
		{svc("b", "", corev1.ServiceTypeNodePort, 80), "not in the node-port range"},
	}
	for _, tc := range cases {
		err := Assign(Default(), stored, []*corev1.Service{tc.in})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Service default/") {
			t.Errorf("%s: got %v, want %q", tc.in.Name, err, tc.want)
		}
	}
}

func TestHeadlessAndExternalNameGetNothing(t *testing.T) {
	h := svc("h", corev1.ClusterIPNone, corev1.ServiceTypeClusterIP)
	e := svc("e", "", corev1.ServiceTypeExternalName)
	if err := Assign(Default(), nil, []*corev1.Service{h, e}); err != nil {
		t.Fatal(err)
	}
	if h.Spec.ClusterIP != corev1.ClusterIPNone || e.Spec.ClusterIP != "" {
		t.Fatalf("headless %q external %q", h.Spec.ClusterIP, e.Spec.ClusterIP)
	}
}

// TestHealthCheckNodePort: a LoadBalancer with externalTrafficPolicy Local
// gets a health-check node port, kept on re-apply and never shared; other
// Services may not ask for one.
func TestHealthCheckNodePort(t *testing.T) {
	local := func(name string, hc int32) *corev1.Service {
		s := svc(name, "", corev1.ServiceTypeLoadBalancer, 0)
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = hc
		return s
	}
	a := local("a", 0)
	if err := Assign(Default(), nil, []*corev1.Service{a}); err != nil {
		t.Fatal(err)
	}
	if a.Spec.HealthCheckNodePort == 0 || a.Spec.HealthCheckNodePort == a.Spec.Ports[0].NodePort {
		t.Fatalf("health-check port %d (node port %d)", a.Spec.HealthCheckNodePort, a.Spec.Ports[0].NodePort)
	}
	again := local("a", 0)
	b := local("b", 0)
	if err := Assign(Default(), []*corev1.Service{a}, []*corev1.Service{again, b}); err != nil {
		t.Fatal(err)
	}
	if again.Spec.HealthCheckNodePort != a.Spec.HealthCheckNodePort {
		t.Errorf("re-applied: %d, want %d kept", again.Spec.HealthCheckNodePort, a.Spec.HealthCheckNodePort)
	}
	used := map[int32]bool{a.Spec.HealthCheckNodePort: true, a.Spec.Ports[0].NodePort: true}
	if used[b.Spec.HealthCheckNodePort] || used[b.Spec.Ports[0].NodePort] || b.Spec.HealthCheckNodePort == b.Spec.Ports[0].NodePort {
		t.Errorf("b reuses a port: %d %d", b.Spec.HealthCheckNodePort, b.Spec.Ports[0].NodePort)
	}
	for _, tc := range []struct {
		s    *corev1.Service
		want string
	}{
		{func() *corev1.Service {
			s := svc("c", "", corev1.ServiceTypeNodePort, 0)
			s.Spec.HealthCheckNodePort = 31000
			return s
		}(), "may only be set when type is LoadBalancer and externalTrafficPolicy is Local"},
		{local("d", 29999), "not in the node-port range"},
		{local("e", a.Spec.HealthCheckNodePort), "already allocated to Service default/a"},
	} {
		err := Assign(Default(), []*corev1.Service{a}, []*corev1.Service{tc.s})
		if err == nil || !strings.Contains(err.Error(), "spec.healthCheckNodePort") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.s.Name, err, tc.want)
		}
	}
}
