package objects

import (
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidationError is every problem found in one object. Each line of Error() names the
// object and the field: `Service default/web: spec.ports[1].port: Invalid value: ...`.
type ValidationError struct {
	Object string // "Service default/web"
	Errs   field.ErrorList
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = e.Object + ": " + fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Describe names an object for messages: "Service default/web", "Node n1".
func Describe(obj Object) string {
	name := fmt.Sprintf("%T", obj)
	if k, err := KindOf(Kinds(), obj); err == nil {
		name = k.Name
	}
	return name + " " + qualifiedName(obj.GetNamespace(), obj.GetName())
}

// Validate checks an object as kube-apiserver would on create, for the fields that
// matter to fjord. It returns nil or a *ValidationError listing every problem. Objects
// are expected as Decode returns them (defaulted).
func Validate(obj Object) error {
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Node:
		errs = validateNode(o)
	case *corev1.Pod:
		errs = validatePod(o)
	case *corev1.Service:
		errs = validateService(o)
	case *discoveryv1.EndpointSlice:
		errs = validateEndpointSlice(o)
	case *networkingv1.Ingress:
		errs = validateIngress(o)
	case *networkingv1.IngressClass:
		errs = validateIngressClass(o)
	case *corev1.ConfigMap:
		errs = validateConfigMap(o)
	case *corev1.Secret:
		errs = validateSecret(o)
	case *coordinationv1.Lease:
		errs = validateLease(o)
	case *BGPConfiguration:
		errs = validateBGPConfiguration(o)
	case *BGPPeer:
		errs = validateBGPPeer(o)
	default:
		return fmt.Errorf("%T is not a kind fjord stores", obj)
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Object: Describe(obj), Errs: errs}
}

var metaPath = field.NewPath("metadata")

// validateMeta checks name, namespace, labels and annotations. nameFn is the kind's
// name rule (apivalidation.NameIsDNSSubdomain for most kinds).
func validateMeta(obj Object, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	return apivalidation.ValidateObjectMetaAccessor(obj, namespaced, nameFn, metaPath)
}

func validateProtocol(p corev1.Protocol, path *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return oneOf(string(p), path, "SCTP", "TCP", "UDP")
}

// oneOf checks an enum field; allowed is listed in the message as given.
func oneOf(v string, path *field.Path, allowed ...string) field.ErrorList {
	if slices.Contains(allowed, v) {
		return nil
	}
	return field.ErrorList{field.NotSupported(path, v, allowed)}
}

func validatePortNum(port int32, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(path, port, msg))
	}
	return errs
}

func validatePortName(name string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortName(name) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}

func validateDNSLabel(v string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(path, v, msg))
	}
	return errs
}

func validateDNSSubdomain(v string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(path, v, msg))
	}
	return errs
}

// validateIP accepts what kube-apiserver accepts in its IP fields: any IP form except
// ambiguous ones (IPv4 octets with leading zeros, IPv4-mapped IPv6).
func validateIP(v string, path *field.Path) field.ErrorList {
	return validation.IsValidIPForLegacyField(path, v, true, nil)
}

func validateCIDR(v string, path *field.Path) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(path, v, true, nil)
}
