package endpoints

import (
	"net/netip"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Labels on every slice the controller writes, as kube-controller-manager sets them.
const (
	LabelServiceName = discoveryv1.LabelServiceName // "kubernetes.io/service-name"
	LabelManagedBy   = discoveryv1.LabelManagedBy   // "endpointslice.kubernetes.io/managed-by"
	// ManagedBy is the managed-by label value. A label value cannot contain "/", so it is
	// "endpoints.fjord.dev" (kube's own is "endpointslice-controller.k8s.io").
	ManagedBy  = "endpoints.fjord.dev"
	nameSuffix = "-fjord"
)

// Managed reports whether fjord's controller owns a slice.
func Managed(es *discoveryv1.EndpointSlice) bool {
	return es.Labels[LabelManagedBy] == ManagedBy
}

// Selects reports whether a Service gets managed slices at all: it needs a selector and
// must not be an ExternalName Service.
func Selects(svc *corev1.Service) bool {
	return len(svc.Spec.Selector) > 0 && svc.Spec.Type != corev1.ServiceTypeExternalName
}

// Desired returns the EndpointSlices fjord keeps for a Service, given every Pod in the
// Service's namespace (others are ignored) and the set of live nodes. It is a pure
// function: the same input gives the same output, sorted.
//
// One slice per distinct port mapping: normally there is one, named "<svc>-fjord". When
// a named targetPort resolves to different numbers in different pods, each mapping gets
// its own slice, "<svc>-fjord-1", "-2", ... in the order of the mappings' keys.
func Desired(svc *corev1.Service, pods []*corev1.Pod, liveNodes map[string]bool) []*discoveryv1.EndpointSlice {
	if !Selects(svc) {
		return nil
	}
	sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
	groups := map[string]*group{}
	for _, pod := range pods {
		if pod.Namespace != svc.Namespace || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		addr, ok := endpointAddress(pod)
		if !ok {
			continue
		}
		ports := resolvePorts(svc, pod)
		key := ports.key()
		g := groups[key]
		if g == nil {
			g = &group{key: key, ports: ports}
			groups[key] = g
		}
		g.endpoints = append(g.endpoints, endpointOf(svc, pod, addr, liveNodes))
	}
	if len(groups) == 0 {
		// kube keeps a placeholder slice with no endpoints and no ports.
		groups[""] = &group{}
	}
	ordered := make([]*group, 0, len(groups))
	for _, g := range groups {
		ordered = append(ordered, g)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].key < ordered[j].key })
	out := make([]*discoveryv1.EndpointSlice, 0, len(ordered))
	for i, g := range ordered {
		name := svc.Name + nameSuffix
		if len(ordered) > 1 {
			name += "-" + strconv.Itoa(i+1)
		}
		out = append(out, newSlice(svc, name, g))
	}
	return out
}

// group is the endpoints that share one port mapping.
type group struct {
	key       string
	ports     portMapping
	endpoints []discoveryv1.Endpoint
}

func newSlice(svc *corev1.Service, name string, g *group) *discoveryv1.EndpointSlice {
	lbls := map[string]string{}
	for k, v := range svc.Labels {
		lbls[k] = v
	}
	lbls[LabelServiceName] = svc.Name
	lbls[LabelManagedBy] = ManagedBy
	sort.Slice(g.endpoints, func(i, j int) bool {
		a, b := g.endpoints[i], g.endpoints[j]
		if a.Addresses[0] != b.Addresses[0] {
			return lessAddr(a.Addresses[0], b.Addresses[0])
		}
		return a.TargetRef.Name < b.TargetRef.Name
	})
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       svc.Namespace,
			Labels:          lbls,
			OwnerReferences: []metav1.OwnerReference{ownerRef(svc)},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   append([]discoveryv1.Endpoint{}, g.endpoints...),
		Ports:       g.ports.endpointPorts(),
	}
}

func ownerRef(svc *corev1.Service) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
		Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

// endpointAddress returns the pod's IPv4 address if the pod belongs in a slice at all:
// it has an address, is not terminating, and has not finished.
func endpointAddress(pod *corev1.Pod) (string, bool) {
	if pod.DeletionTimestamp != nil {
		return "", false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return "", false
	}
	cands := []string{pod.Status.PodIP}
	for _, ip := range pod.Status.PodIPs {
		cands = append(cands, ip.IP)
	}
	for _, c := range cands {
		if a, err := netip.ParseAddr(c); err == nil && a.Is4() {
			return a.String(), true
		}
	}
	return "", false
}

// endpointOf builds one endpoint. serving is the pod's own readiness (or the Service's
// publishNotReadyAddresses); ready additionally needs the pod's node to be alive, because
// a pod on a dead node cannot answer whatever its last reported status says.
func endpointOf(svc *corev1.Service, pod *corev1.Pod, addr string, liveNodes map[string]bool) discoveryv1.Endpoint {
	serving := podReady(pod) || svc.Spec.PublishNotReadyAddresses
	ready := serving && liveNodes[pod.Spec.NodeName]
	terminating := false
	ep := discoveryv1.Endpoint{
		Addresses:  []string{addr},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef: &corev1.ObjectReference{
			Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		},
	}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
		h := pod.Spec.Hostname // DNS name <hostname>.<svc>.<ns>.svc for headless services
		ep.Hostname = &h
	}
	if pod.Spec.NodeName != "" {
		n := pod.Spec.NodeName
		ep.NodeName = &n
	}
	return ep
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func lessAddr(a, b string) bool {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return a < b
	}
	return x.Less(y)
}
