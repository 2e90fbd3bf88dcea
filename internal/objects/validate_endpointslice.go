package objects

import (
	"net/netip"

	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// kube-apiserver's limits for one EndpointSlice.
const (
	maxEndpoints         = 1000
	maxEndpointAddresses = 100
	maxEndpointPorts     = 100
)

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateMeta(es, true, apivalidation.NameIsDNSSubdomain)
	typePath := field.NewPath("addressType")
	if es.AddressType == "" {
		errs = append(errs, field.Required(typePath, ""))
	} else {
		errs = append(errs, oneOf(string(es.AddressType), typePath, "IPv4", "IPv6", "FQDN")...)
	}
	eps := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpoints {
		errs = append(errs, field.TooMany(eps, len(es.Endpoints), maxEndpoints))
	}
	for i, ep := range es.Endpoints {
		ap := eps.Index(i).Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			errs = append(errs, field.Required(ap, "must contain at least 1 address"))
		case len(ep.Addresses) > maxEndpointAddresses:
			errs = append(errs, field.TooMany(ap, len(ep.Addresses), maxEndpointAddresses))
		}
		for j, a := range ep.Addresses {
			errs = append(errs, validateEndpointAddress(es.AddressType, a, ap.Index(j))...)
		}
		if ep.NodeName != nil && *ep.NodeName != "" {
			errs = append(errs, validateDNSSubdomain(*ep.NodeName, eps.Index(i).Child("nodeName"))...)
		}
		if ep.Hostname != nil {
			errs = append(errs, validateDNSLabel(*ep.Hostname, eps.Index(i).Child("hostname"))...)
		}
	}
	ports := field.NewPath("ports")
	if len(es.Ports) > maxEndpointPorts {
		errs = append(errs, field.TooMany(ports, len(es.Ports), maxEndpointPorts))
	}
	names := map[string]bool{}
	for i, p := range es.Ports {
		pp := ports.Index(i)
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			errs = append(errs, validateDNSLabel(name, pp.Child("name"))...)
		}
		if names[name] {
			errs = append(errs, field.Duplicate(pp.Child("name"), name))
		}
		names[name] = true
		if p.Protocol == nil {
			errs = append(errs, field.Required(pp.Child("protocol"), ""))
		} else {
			errs = append(errs, validateProtocol(*p.Protocol, pp.Child("protocol"))...)
		}
		if p.Port != nil {
			errs = append(errs, validatePortNum(*p.Port, pp.Child("port"))...)
		}
	}
	return errs
}

func validateEndpointAddress(t discoveryv1.AddressType, a string, path *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if e := validateIP(a, path); len(e) > 0 {
			return e
		}
		ip, err := parseAddr(a)
		if err != nil {
			return nil
		}
		if t == discoveryv1.AddressTypeIPv4 && !ip.Is4() {
			return field.ErrorList{field.Invalid(path, a, "must be an IPv4 address")}
		}
		if t == discoveryv1.AddressTypeIPv6 && !ip.Is6() {
			return field.ErrorList{field.Invalid(path, a, "must be an IPv6 address")}
		}
	case discoveryv1.AddressTypeFQDN:
		return validateDNSSubdomain(a, path)
	}
	return nil
}

// parseAddr parses an IP that passed validateIP (netip accepts every form it allows).
func parseAddr(s string) (netip.Addr, error) {
	return netip.ParseAddr(s)
}
