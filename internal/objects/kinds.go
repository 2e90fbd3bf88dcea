// Package objects owns fjord's object model: the Kubernetes kinds fjord stores, how
// they are decoded from YAML or JSON, and how each is validated before it is stored.
//
// Objects keep their Kubernetes shapes (k8s.io/api types) so that manifests written for
// a real cluster apply unchanged.
package objects

import (
	"fmt"
	"sort"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Object is any stored Kubernetes object: it has metadata and a type.
type Object interface {
	metav1.Object
	runtime.Object
}

// Kind describes one stored kind.
type Kind struct {
	Name       string   // "Pod"
	APIVersion string   // "v1"
	Resource   string   // "pods": the store key segment and the plural users type
	Aliases    []string // "po", "pod": accepted by get and delete
	Namespaced bool
	New        func() Object
}

// Key returns the store-relative key of an object of this kind:
// "<resource>/<namespace>/<name>" or "<resource>/<name>" for cluster-scoped kinds.
func (k Kind) Key(namespace, name string) string {
	if k.Namespaced {
		return k.Resource + "/" + namespace + "/" + name
	}
	return k.Resource + "/" + name
}

// Prefix returns the store-relative key prefix of every object of this kind in a
// namespace ("" means all namespaces).
func (k Kind) Prefix(namespace string) string {
	if k.Namespaced && namespace != "" {
		return k.Resource + "/" + namespace + "/"
	}
	return k.Resource + "/"
}

// Registry is the fixed set of kinds fjord stores. It is a value, built by Kinds.
type Registry struct {
	kinds []Kind
}

// Kinds returns the registry of every kind fjord stores.
func Kinds() Registry {
	return Registry{kinds: []Kind{
		{Name: "Node", APIVersion: "v1", Resource: "nodes", Aliases: []string{"node", "no"}, New: func() Object { return &corev1.Node{} }},
		{Name: "Pod", APIVersion: "v1", Resource: "pods", Aliases: []string{"pod", "po"}, Namespaced: true, New: func() Object { return &corev1.Pod{} }},
		{Name: "Service", APIVersion: "v1", Resource: "services", Aliases: []string{"service", "svc"}, Namespaced: true, New: func() Object { return &corev1.Service{} }},
		{Name: "EndpointSlice", APIVersion: "discovery.k8s.io/v1", Resource: "endpointslices", Aliases: []string{"endpointslice"}, Namespaced: true, New: func() Object { return &discoveryv1.EndpointSlice{} }},
		{Name: "Ingress", APIVersion: "networking.k8s.io/v1", Resource: "ingresses", Aliases: []string{"ingress", "ing"}, Namespaced: true, New: func() Object { return &networkingv1.Ingress{} }},
		{Name: "IngressClass", APIVersion: "networking.k8s.io/v1", Resource: "ingressclasses", Aliases: []string{"ingressclass"}, New: func() Object { return &networkingv1.IngressClass{} }},
		{Name: "ConfigMap", APIVersion: "v1", Resource: "configmaps", Aliases: []string{"configmap", "cm"}, Namespaced: true, New: func() Object { return &corev1.ConfigMap{} }},
		{Name: "Secret", APIVersion: "v1", Resource: "secrets", Aliases: []string{"secret"}, Namespaced: true, New: func() Object { return &corev1.Secret{} }},
		{Name: "Lease", APIVersion: "coordination.k8s.io/v1", Resource: "leases", Aliases: []string{"lease"}, Namespaced: true, New: func() Object { return &coordinationv1.Lease{} }},
		{Name: "BGPConfiguration", APIVersion: FjordAPIVersion, Resource: "bgpconfigurations", Aliases: []string{"bgpconfiguration", "bgpconfig"}, New: func() Object { return &BGPConfiguration{} }},
		{Name: "BGPPeer", APIVersion: FjordAPIVersion, Resource: "bgppeers", Aliases: []string{"bgppeer"}, New: func() Object { return &BGPPeer{} }},
	}}
}

// ByName finds a kind by its Kind name ("Pod"), exactly.
func (r Registry) ByName(name string) (Kind, bool) {
	for _, k := range r.kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Lookup finds a kind by anything a user may type: resource, alias or kind name, in
// any case ("pods", "po", "Pod").
func (r Registry) Lookup(s string) (Kind, error) {
	l := strings.ToLower(s)
	for _, k := range r.kinds {
		if l == k.Resource || l == strings.ToLower(k.Name) {
			return k, nil
		}
		for _, a := range k.Aliases {
			if l == a {
				return k, nil
			}
		}
	}
	return Kind{}, fmt.Errorf("unknown kind %q (known: %s)", s, strings.Join(r.Resources(), ", "))
}

// Resources lists the resource names, sorted.
func (r Registry) Resources() []string {
	var out []string
	for _, k := range r.kinds {
		out = append(out, k.Resource)
	}
	sort.Strings(out)
	return out
}

// All returns every kind.
func (r Registry) All() []Kind { return append([]Kind(nil), r.kinds...) }
