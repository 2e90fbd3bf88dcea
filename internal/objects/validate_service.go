package objects

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// NodePortRange is the range fjord allocates and accepts nodePorts from (kube's default
// --service-node-port-range).
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// maxClientIPTimeout is kube's limit for sessionAffinityConfig.clientIP.timeoutSeconds.
const maxClientIPTimeout = 86400

func validateService(svc *corev1.Service) field.ErrorList {
	// Service names become DNS labels (<name>.<ns>.svc), hence the stricter rule.
	errs := validateMeta(svc, true, apivalidation.NameIsDNS1035Label)
	s := &svc.Spec
	spec := field.NewPath("spec")
	errs = append(errs, oneOf(string(s.Type), spec.Child("type"), "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")...)
	headless := s.ClusterIP == corev1.ClusterIPNone

	switch {
	case s.Type == corev1.ServiceTypeExternalName:
		if s.ClusterIP != "" {
			errs = append(errs, field.Forbidden(spec.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		if s.ExternalName == "" {
			errs = append(errs, field.Required(spec.Child("externalName"), ""))
		} else {
			errs = append(errs, validateDNSSubdomain(s.ExternalName, spec.Child("externalName"))...)
		}
	case headless && (s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer):
		errs = append(errs, field.Invalid(spec.Child("clusterIP"), s.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", s.Type)))
	case s.ClusterIP != "" && !headless:
		errs = append(errs, validateIP(s.ClusterIP, spec.Child("clusterIP"))...)
	}
	for i, ip := range s.ClusterIPs {
		p := spec.Child("clusterIPs").Index(i)
		switch {
		case i == 0 && s.ClusterIP != "" && ip != s.ClusterIP:
			errs = append(errs, field.Invalid(p, ip, "must match `spec.clusterIP`"))
		case ip != corev1.ClusterIPNone:
			errs = append(errs, validateIP(ip, p)...)
		}
	}

	if len(s.Ports) == 0 && !headless && s.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(spec.Child("ports"), ""))
	}
	errs = append(errs, validateServicePorts(s, spec.Child("ports"))...)

	errs = append(errs, metav1validation.ValidateLabels(s.Selector, spec.Child("selector"))...)
	errs = append(errs, validateSessionAffinity(s, spec)...)

	if s.ExternalTrafficPolicy != "" {
		if !externallyAccessible(s) {
			errs = append(errs, field.Invalid(spec.Child("externalTrafficPolicy"), s.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		} else {
			errs = append(errs, oneOf(string(s.ExternalTrafficPolicy), spec.Child("externalTrafficPolicy"), "Cluster", "Local")...)
		}
	}
	if s.InternalTrafficPolicy != nil {
		errs = append(errs, oneOf(string(*s.InternalTrafficPolicy), spec.Child("internalTrafficPolicy"), "Cluster", "Local")...)
	}
	for i, ip := range s.ExternalIPs {
		p := spec.Child("externalIPs").Index(i)
		if e := validateIP(ip, p); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		errs = append(errs, validateNonSpecialIP(ip, p)...)
	}
	for i, c := range s.LoadBalancerSourceRanges {
		errs = append(errs, validateCIDR(c, spec.Child("loadBalancerSourceRanges").Index(i))...)
	}
	return errs
}

func validateServicePorts(s *corev1.ServiceSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	seen := map[string]bool{} // "80/TCP": a port and protocol may be listed once
	nodePortOK := s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer
	for i, p := range s.Ports {
		pp := path.Index(i)
		switch {
		case p.Name == "" && len(s.Ports) > 1:
			errs = append(errs, field.Required(pp.Child("name"), ""))
		case p.Name != "":
			errs = append(errs, validateDNSLabel(p.Name, pp.Child("name"))...)
			if names[p.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names[p.Name] = true
		}
		errs = append(errs, validatePortNum(p.Port, pp.Child("port"))...)
		errs = append(errs, validateProtocol(p.Protocol, pp.Child("protocol"))...)
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if seen[key] {
			errs = append(errs, field.Duplicate(pp, key))
		}
		seen[key] = true
		errs = append(errs, validateTargetPort(p.TargetPort, pp.Child("targetPort"))...)
		if p.NodePort != 0 {
			switch {
			case !nodePortOK:
				errs = append(errs, field.Forbidden(pp.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", s.Type)))
			case p.NodePort < NodePortMin || p.NodePort > NodePortMax:
				errs = append(errs, field.Invalid(pp.Child("nodePort"), p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", NodePortMin, NodePortMax)))
			}
		}
	}
	return errs
}

func validateTargetPort(tp intstr.IntOrString, path *field.Path) field.ErrorList {
	if tp.Type == intstr.String {
		return validatePortName(tp.StrVal, path)
	}
	return validatePortNum(tp.IntVal, path)
}

func validateSessionAffinity(s *corev1.ServiceSpec, spec *field.Path) field.ErrorList {
	errs := oneOf(string(s.SessionAffinity), spec.Child("sessionAffinity"), "ClientIP", "None")
	cfg := spec.Child("sessionAffinityConfig")
	switch s.SessionAffinity {
	case corev1.ServiceAffinityClientIP:
		if s.SessionAffinityConfig == nil || s.SessionAffinityConfig.ClientIP == nil || s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			return append(errs, field.Required(cfg, "when `sessionAffinity` is ClientIP"))
		}
		t := *s.SessionAffinityConfig.ClientIP.TimeoutSeconds
		if t < 1 || t > maxClientIPTimeout {
			errs = append(errs, field.Invalid(cfg.Child("clientIP", "timeoutSeconds"), t, validation.InclusiveRangeError(1, maxClientIPTimeout)))
		}
	case corev1.ServiceAffinityNone:
		if s.SessionAffinityConfig != nil {
			errs = append(errs, field.Forbidden(cfg, "must not be set when `sessionAffinity` is None"))
		}
	}
	return errs
}

// validateNonSpecialIP rejects addresses that can never be a service's external IP.
func validateNonSpecialIP(ip string, path *field.Path) field.ErrorList {
	a, err := parseAddr(ip)
	if err != nil {
		return nil // reported by validateIP
	}
	switch {
	case a.IsUnspecified():
		return field.ErrorList{field.Invalid(path, ip, "may not be unspecified (0.0.0.0, ::)")}
	case a.IsLoopback():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case a.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case a.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}
