package objects

import (
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Annotations fjord's agent puts on its Node; get nodes -o wide shows them.
const (
	AnnotationBackend = "fjord.dev/backend"  // pod network mode: vxlan, routed or bgp
	AnnotationVTEPMAC = "fjord.dev/vtep-mac" // MAC of the node's VXLAN device
)

func validateNode(n *corev1.Node) field.ErrorList {
	errs := validateMeta(n, false, apivalidation.NameIsDNSSubdomain)
	if mac, ok := n.Annotations[AnnotationVTEPMAC]; ok {
		if _, err := net.ParseMAC(mac); err != nil {
			errs = append(errs, field.Invalid(metaPath.Child("annotations").Key(AnnotationVTEPMAC), mac, "must be a MAC address (e.g. 02:42:ac:11:00:02)"))
		}
	}
	if as, ok := n.Annotations[AnnotationBGPASNumber]; ok {
		if _, err := ParseASNumber(as); err != nil {
			errs = append(errs, field.Invalid(metaPath.Child("annotations").Key(AnnotationBGPASNumber), as, err.Error()))
		}
	}
	spec := field.NewPath("spec")
	if n.Spec.PodCIDR != "" {
		errs = append(errs, validateCIDR(n.Spec.PodCIDR, spec.Child("podCIDR"))...)
	}
	cidrsPath := spec.Child("podCIDRs")
	families := map[bool]bool{}
	for i, c := range n.Spec.PodCIDRs {
		if e := validateCIDR(c, cidrsPath.Index(i)); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		// The map key is "is IPv4": at most one CIDR per family (dual-stack).
		pfx, err := netip.ParsePrefix(c)
		if err == nil {
			v4 := pfx.Addr().Unmap().Is4()
			if families[v4] {
				errs = append(errs, field.Invalid(cidrsPath, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
			families[v4] = true
		}
	}
	if len(n.Spec.PodCIDRs) > 2 {
		errs = append(errs, field.TooMany(cidrsPath, len(n.Spec.PodCIDRs), 2))
	}
	if n.Spec.PodCIDR != "" && len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
		errs = append(errs, field.Invalid(cidrsPath.Index(0), n.Spec.PodCIDRs[0], "must match `spec.podCIDR`"))
	}
	addrs := field.NewPath("status", "addresses")
	for i, a := range n.Status.Addresses {
		ap := addrs.Index(i)
		errs = append(errs, oneOf(string(a.Type), ap.Child("type"), "Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS")...)
		switch {
		case a.Address == "":
			errs = append(errs, field.Required(ap.Child("address"), ""))
		case a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP:
			errs = append(errs, validateIP(a.Address, ap.Child("address"))...)
		}
	}
	return errs
}
