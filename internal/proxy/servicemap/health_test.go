package servicemap

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// TestHealthCheckNodePortAndTriggerTime: spec.healthCheckNodePort counts
// only for a LoadBalancer with externalTrafficPolicy Local, and the
// latest last-change-trigger-time of a Service's slices is carried.
func TestHealthCheckNodePortAndTriggerTime(t *testing.T) {
	lb := svc("default", "lb", "10.96.0.10", port("http", corev1.ProtocolTCP, 80))
	lb.Spec.Type, lb.Spec.ExternalTrafficPolicy, lb.Spec.HealthCheckNodePort = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, 31000
	cluster := svc("default", "cluster", "10.96.0.11", port("http", corev1.ProtocolTCP, 80))
	cluster.Spec.Type, cluster.Spec.HealthCheckNodePort = corev1.ServiceTypeLoadBalancer, 31001 // Cluster policy: ignored
	ports := []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}}
	a := slice("default", "lb-a", "lb", ports, ep("10.244.1.5", "node-a"))
	b := slice("default", "lb-b", "lb", ports, ep("10.244.2.5", "node-b"))
	a.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: "2026-01-01T10:00:00Z"}
	b.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: "2026-01-01T10:00:05.5Z"}
	m := Build([]*corev1.Service{lb, cluster}, []*discoveryv1.EndpointSlice{a, b}, Options{NodeName: "node-a"})
	got := m.Ports[Key("default", "lb", "http", TCP)]
	if got.HealthCheckNodePort != 31000 {
		t.Errorf("lb: HealthCheckNodePort %d, want 31000", got.HealthCheckNodePort)
	}
	if want := time.Date(2026, 1, 1, 10, 0, 5, 500_000_000, time.UTC); !got.TriggerTime.Equal(want) {
		t.Errorf("lb: TriggerTime %v, want %v", got.TriggerTime, want)
	}
	if c := m.Ports[Key("default", "cluster", "http", TCP)]; c.HealthCheckNodePort != 0 || !c.TriggerTime.IsZero() {
		t.Errorf("cluster: %d %v, want no health check port and no trigger time", c.HealthCheckNodePort, c.TriggerTime)
	}
}
