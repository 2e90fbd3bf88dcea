package route

import networkingv1 "k8s.io/api/networking/v1"

// LegacyClassAnnotation is the deprecated annotation that selects an
// ingress class; it is honoured when spec.ingressClassName is unset.
const LegacyClassAnnotation = "kubernetes.io/ingress.class"

// classMatches reports whether ing belongs to the controller's class.
// spec.ingressClassName takes precedence over the legacy annotation; an
// Ingress with neither belongs to the class only if it is the default.
func classMatches(ing *networkingv1.Ingress, class string, isDefault bool) bool {
	if n := ing.Spec.IngressClassName; n != nil && *n != "" {
		return *n == class
	}
	if a, ok := ing.Annotations[LegacyClassAnnotation]; ok && a != "" {
		return a == class
	}
	return isDefault
}
