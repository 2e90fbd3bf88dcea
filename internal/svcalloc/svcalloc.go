// Package svcalloc assigns what kube-apiserver assigns to a Service on admission: a
// cluster IP from the service range and node ports (and, for a LoadBalancer with
// externalTrafficPolicy Local, its health-check node port) from the node-port range. It is
// pure: the store calls it with every stored Service inside the same guarded
// transaction that writes the result, so two applies can never hand out one address.
package svcalloc

import (
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Ranges are the cluster's service address and node-port ranges.
type Ranges struct {
	ServiceCIDR netip.Prefix
	NodePortMin int
	NodePortMax int
}

// Default is Kubernetes' usual layout: 10.96.0.0/16 and ports 30000-32767.
func Default() Ranges {
	return Ranges{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16"), NodePortMin: 30000, NodePortMax: 32767}
}

// Assign fills spec.clusterIP(s) and node ports of the incoming Services, keeping what
// a stored Service of the same name already holds. It returns an error naming the
// object and field when a requested value is outside the range, taken, or an attempt
// to change an immutable cluster IP.
func Assign(r Ranges, stored, incoming []*corev1.Service) error {
	byName := map[string]*corev1.Service{}
	for _, s := range stored {
		byName[key(s)] = s
	}
	applying := map[string]bool{}
	for _, s := range incoming {
		applying[key(s)] = true
	}
	usedIP := map[netip.Addr]string{}
	usedPort := map[int32]string{}
	note := func(s *corev1.Service) {
		if ip, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
			usedIP[ip] = key(s)
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				usedPort[p.NodePort] = key(s)
			}
		}
		if s.Spec.HealthCheckNodePort != 0 {
			usedPort[s.Spec.HealthCheckNodePort] = key(s)
		}
	}
	for _, s := range stored {
		if !applying[key(s)] {
			note(s)
		}
	}
	// Incoming services that ask for specific values claim them before any automatic
	// allocation, so an explicit request is never lost to an automatic one.
	sorted := append([]*corev1.Service(nil), incoming...)
	sort.Slice(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	for _, s := range sorted {
		if err := claimRequested(r, s, byName[key(s)], usedIP, usedPort); err != nil {
			return err
		}
	}
	for _, s := range sorted {
		if err := allocate(r, s, byName[key(s)], usedIP, usedPort); err != nil {
			return err
		}
	}
	return nil
}

func claimRequested(r Ranges, s, old *corev1.Service, usedIP map[netip.Addr]string, usedPort map[int32]string) error {
	id := fmt.Sprintf("Service %s", key(s))
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	// A re-applied Service keeps what it holds: adopt the stored values first, so they
	// are claimed before any automatic allocation could hand them to someone else.
	if old != nil {
		if s.Spec.ClusterIP == "" {
			s.Spec.ClusterIP = old.Spec.ClusterIP
		}
		if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for i := range s.Spec.Ports {
				if s.Spec.Ports[i].NodePort == 0 {
					s.Spec.Ports[i].NodePort = oldNodePort(old, s.Spec.Ports[i])
				}
			}
		}
		if wantsHealthCheckPort(s) && s.Spec.HealthCheckNodePort == 0 {
			s.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
		}
	}
	if hc := s.Spec.HealthCheckNodePort; hc != 0 {
		if !wantsHealthCheckPort(s) {
			return fmt.Errorf("%s: spec.healthCheckNodePort: Invalid value: %d: may only be set when type is LoadBalancer and externalTrafficPolicy is Local", id, hc)
		}
		if int(hc) < r.NodePortMin || int(hc) > r.NodePortMax {
			return fmt.Errorf("%s: spec.healthCheckNodePort: Invalid value: %d: not in the node-port range %d-%d", id, hc, r.NodePortMin, r.NodePortMax)
		}
		if owner, taken := usedPort[hc]; taken && owner != key(s) {
			return fmt.Errorf("%s: spec.healthCheckNodePort: Invalid value: %d: already allocated to Service %s", id, hc, owner)
		}
		for i, p := range s.Spec.Ports {
			if p.NodePort == hc {
				return fmt.Errorf("%s: spec.healthCheckNodePort: Invalid value: %d: also spec.ports[%d].nodePort", id, hc, i)
			}
		}
		usedPort[hc] = key(s)
	}
	if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
		ip, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil {
			return fmt.Errorf("%s: spec.clusterIP: Invalid value: %q: not an IP address", id, s.Spec.ClusterIP)
		}
		if old != nil && old.Spec.ClusterIP != "" && old.Spec.ClusterIP != s.Spec.ClusterIP {
			return fmt.Errorf("%s: spec.clusterIP: Invalid value: %q: field is immutable (it is %s)", id, s.Spec.ClusterIP, old.Spec.ClusterIP)
		}
		if !r.ServiceCIDR.Contains(ip) {
			return fmt.Errorf("%s: spec.clusterIP: Invalid value: %q: not in the service range %v", id, s.Spec.ClusterIP, r.ServiceCIDR)
		}
		if owner, taken := usedIP[ip]; taken && owner != key(s) {
			return fmt.Errorf("%s: spec.clusterIP: Invalid value: %q: already allocated to Service %s", id, s.Spec.ClusterIP, owner)
		}
		usedIP[ip] = key(s)
	}
	for i, p := range s.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		if int(p.NodePort) < r.NodePortMin || int(p.NodePort) > r.NodePortMax {
			return fmt.Errorf("%s: spec.ports[%d].nodePort: Invalid value: %d: not in the node-port range %d-%d", id, i, p.NodePort, r.NodePortMin, r.NodePortMax)
		}
		if owner, taken := usedPort[p.NodePort]; taken && owner != key(s) {
			return fmt.Errorf("%s: spec.ports[%d].nodePort: Invalid value: %d: already allocated to Service %s", id, i, p.NodePort, owner)
		}
		usedPort[p.NodePort] = key(s)
	}
	return nil
}

func allocate(r Ranges, s, old *corev1.Service, usedIP map[netip.Addr]string, usedPort map[int32]string) error {
	id := fmt.Sprintf("Service %s", key(s))
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if s.Spec.ClusterIP == "" {
		ip, ok := freeIP(r.ServiceCIDR, usedIP)
		if !ok {
			return fmt.Errorf("%s: spec.clusterIP: the service range %v is full", id, r.ServiceCIDR)
		}
		s.Spec.ClusterIP = ip.String()
		usedIP[ip] = key(s)
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	}
	if s.Spec.Type != corev1.ServiceTypeNodePort && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil
	}
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		port, ok := freePort(r, usedPort)
		if !ok {
			return fmt.Errorf("%s: spec.ports[%d].nodePort: the node-port range is full", id, i)
		}
		p.NodePort = port
		usedPort[port] = key(s)
	}
	if wantsHealthCheckPort(s) && s.Spec.HealthCheckNodePort == 0 {
		port, ok := freePort(r, usedPort)
		if !ok {
			return fmt.Errorf("%s: spec.healthCheckNodePort: the node-port range is full", id)
		}
		s.Spec.HealthCheckNodePort = port
		usedPort[port] = key(s)
	}
	return nil
}

// wantsHealthCheckPort reports whether s gets a health-check node port: a
// LoadBalancer with externalTrafficPolicy Local, as in Kubernetes.
func wantsHealthCheckPort(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func oldNodePort(old *corev1.Service, p corev1.ServicePort) int32 {
	if old == nil {
		return 0
	}
	for _, op := range old.Spec.Ports {
		if op.Name == p.Name && op.Protocol == p.Protocol && op.Port == p.Port {
			return op.NodePort
		}
	}
	return 0
}

// freeIP returns the lowest free address, skipping the network address and the first
// host address (reserved, as Kubernetes reserves it for the "kubernetes" Service).
func freeIP(cidr netip.Prefix, used map[netip.Addr]string) (netip.Addr, bool) {
	cidr = cidr.Masked()
	a := cidr.Addr().Next().Next()
	for cidr.Contains(a) {
		next := a.Next()
		if !cidr.Contains(next) { // the broadcast address of an IPv4 range
			break
		}
		if _, taken := used[a]; !taken {
			return a, true
		}
		a = next
	}
	return netip.Addr{}, false
}

func freePort(r Ranges, used map[int32]string) (int32, bool) {
	for p := r.NodePortMin; p <= r.NodePortMax; p++ {
		if _, taken := used[int32(p)]; !taken {
			return int32(p), true
		}
	}
	return 0, false
}

func key(s *corev1.Service) string { return s.Namespace + "/" + s.Name }
