package controller

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/fjord-net/fjord/internal/ingress/route"
)

// sliceIndex groups EndpointSlices by namespace/service.
type sliceIndex map[string][]*discoveryv1.EndpointSlice

func indexSlices(slices []*discoveryv1.EndpointSlice) sliceIndex {
	idx := sliceIndex{}
	for _, s := range slices {
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := s.Namespace + "/" + svc
		idx[k] = append(idx[k], s)
	}
	return idx
}

// readyEndpoints returns the ready endpoints of the Service port a route
// backend names (by number or by name), sorted. The EndpointSlice port is
// matched by the Service port's name ("" for an unnamed single port), as
// the EndpointSlice controller writes it; its number is the target port.
// Endpoints whose ready condition is unset count as ready, as the API
// says. Only TCP ports and IP addresses are used.
func readyEndpoints(b route.Backend, svc *corev1.Service, idx sliceIndex) ([]netip.AddrPort, error) {
	if svc == nil {
		return nil, fmt.Errorf("service %s/%s not found", b.Namespace, b.Service)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, fmt.Errorf("service %s/%s is ExternalName, which is not supported", b.Namespace, b.Service)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if b.Port.Name != "" && p.Name == b.Port.Name || b.Port.Name == "" && p.Port == b.Port.Number {
			sp = p
			break
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("service %s/%s has no port %s", b.Namespace, b.Service, b.Port)
	}
	if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
		return nil, fmt.Errorf("service %s/%s port %s is %s, not TCP", b.Namespace, b.Service, b.Port, sp.Protocol)
	}
	var out []netip.AddrPort
	for _, s := range idx[b.Namespace+"/"+b.Service] {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name != sp.Name || p.Port == nil || p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
				continue
			}
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, a := range ep.Addresses {
					ip, err := netip.ParseAddr(a)
					if err != nil {
						continue
					}
					out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(*p.Port)))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out), nil
}
