package objects

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validatePod(p *corev1.Pod) field.ErrorList {
	errs := validateMeta(p, true, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	if len(p.Spec.Containers) == 0 {
		errs = append(errs, field.Required(spec.Child("containers"), ""))
	}
	names := map[string]bool{}
	errs = append(errs, validateContainers(p.Spec.InitContainers, spec.Child("initContainers"), names, p.Spec.HostNetwork)...)
	errs = append(errs, validateContainers(p.Spec.Containers, spec.Child("containers"), names, p.Spec.HostNetwork)...)
	if p.Spec.NodeName != "" {
		errs = append(errs, validateDNSSubdomain(p.Spec.NodeName, spec.Child("nodeName"))...)
	}
	if p.Spec.RestartPolicy != "" {
		errs = append(errs, oneOf(string(p.Spec.RestartPolicy), spec.Child("restartPolicy"), "Always", "OnFailure", "Never")...)
	}
	return append(errs, validatePodStatus(&p.Status)...)
}

// validateContainers checks containers of one list; names is shared across init and
// regular containers because a name must be unique in the whole pod.
func validateContainers(cs []corev1.Container, path *field.Path, names map[string]bool, hostNetwork bool) field.ErrorList {
	var errs field.ErrorList
	portNames := map[string]bool{}
	for i, c := range cs {
		cp := path.Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(cp.Child("name"), ""))
		case names[c.Name]:
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
		default:
			errs = append(errs, validateDNSLabel(c.Name, cp.Child("name"))...)
		}
		names[c.Name] = true
		if c.Image == "" {
			errs = append(errs, field.Required(cp.Child("image"), ""))
		} else if c.Image != strings.TrimSpace(c.Image) {
			errs = append(errs, field.Invalid(cp.Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
		for j, port := range c.Ports {
			pp := cp.Child("ports").Index(j)
			if port.Name != "" {
				errs = append(errs, validatePortName(port.Name, pp.Child("name"))...)
				if portNames[port.Name] {
					errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
				}
				portNames[port.Name] = true
			}
			if port.ContainerPort == 0 {
				errs = append(errs, field.Required(pp.Child("containerPort"), ""))
			} else {
				errs = append(errs, validatePortNum(port.ContainerPort, pp.Child("containerPort"))...)
			}
			if port.HostPort != 0 {
				errs = append(errs, validatePortNum(port.HostPort, pp.Child("hostPort"))...)
				if hostNetwork && port.HostPort != port.ContainerPort {
					errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
				}
			}
			errs = append(errs, validateProtocol(port.Protocol, pp.Child("protocol"))...)
		}
	}
	return errs
}

func validatePodStatus(s *corev1.PodStatus) field.ErrorList {
	var errs field.ErrorList
	status := field.NewPath("status")
	if s.Phase != "" {
		errs = append(errs, oneOf(string(s.Phase), status.Child("phase"), "Pending", "Running", "Succeeded", "Failed", "Unknown")...)
	}
	if s.PodIP != "" {
		errs = append(errs, validateIP(s.PodIP, status.Child("podIP"))...)
	}
	for i, ip := range s.PodIPs {
		errs = append(errs, validateIP(ip.IP, status.Child("podIPs").Index(i).Child("ip"))...)
	}
	if s.PodIP != "" && len(s.PodIPs) > 0 && s.PodIPs[0].IP != s.PodIP {
		errs = append(errs, field.Invalid(status.Child("podIPs").Index(0).Child("ip"), s.PodIPs[0].IP, "must match `status.podIP`"))
	}
	if s.HostIP != "" {
		errs = append(errs, validateIP(s.HostIP, status.Child("hostIP"))...)
	}
	return errs
}
