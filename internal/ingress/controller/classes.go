package controller

import (
	"slices"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/fjord-net/fjord/internal/ingress/route"
)

// DefaultControllerNames are the spec.controller values of IngressClasses
// that fjord serves: ingress-nginx's, so existing classes keep working,
// and fjord's own.
var DefaultControllerNames = []string{"k8s.io/ingress-nginx", "fjord.dev/ingress"}

// DefaultClassAnnotation marks the cluster's default IngressClass.
const DefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"

// classSelector decides which Ingresses are ours: those naming class (the
// --ingress-class flag, served even without an IngressClass object) or
// any IngressClass whose spec.controller is one of controllers; and, when
// one of those IngressClasses is annotated as the default, Ingresses that
// name no class at all.
func classSelector(class string, controllers []string, ics []*networkingv1.IngressClass) route.ClassSelector {
	sel := route.ClassSelector{Classes: []string{class}}
	for _, ic := range ics {
		ours := ic.Name == class || slices.Contains(controllers, ic.Spec.Controller)
		if !ours {
			continue
		}
		if ic.Name != class {
			sel.Classes = append(sel.Classes, ic.Name)
		}
		if ic.Annotations[DefaultClassAnnotation] == "true" {
			sel.IsDefault = true
		}
	}
	slices.Sort(sel.Classes)
	return sel
}
