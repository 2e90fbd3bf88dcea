package route

import networkingv1 "k8s.io/api/networking/v1"

// LegacyClassAnnotation is the deprecated annotation that selects an
// ingress class; it is honoured when spec.ingressClassName is unset.
const LegacyClassAnnotation = "kubernetes.io/ingress.class"

// classMatches reports whether ing belongs to the controller's class.
// spec.ingressClassName takes precedence over the legacy annotation; an
// Ingress with neither belongs to the class only if it is the default.
func classMatches(ing *networkingv1.Ingress, class string, isDefault bool) bool {
	return ClassSelector{Classes: []string{class}, IsDefault: isDefault}.Selects(ing)
}

// ClassSelector selects the Ingresses of a controller that serves several
// class names (its own and those of IngressClasses naming its
// controller).
type ClassSelector struct {
	Classes   []string
	IsDefault bool // take Ingresses that name no class
}

// Selects applies the rules of classMatches with a set of classes.
func (s ClassSelector) Selects(ing *networkingv1.Ingress) bool {
	name := ""
	if n := ing.Spec.IngressClassName; n != nil && *n != "" {
		name = *n
	} else if a, ok := ing.Annotations[LegacyClassAnnotation]; ok && a != "" {
		name = a
	} else {
		return s.IsDefault
	}
	for _, c := range s.Classes {
		if c == name {
			return true
		}
	}
	return false
}
