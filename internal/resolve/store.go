package resolve

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/fjord-net/fjord/internal/ingress/route"
	"github.com/fjord-net/fjord/internal/kubelet"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/store"
)

// Lister lists objects of a kind: fjord's store, or a Kubernetes API reader.
type Lister interface {
	List(ctx context.Context, k objects.Kind, namespace string) ([]objects.Object, int64, error)
}

// Store answers from the objects of a Lister (fjord's store or the Kubernetes API).
type Store struct {
	st    Lister
	kinds objects.Registry
	// NetnsOf, if set, finds the network namespace of a pod that carries no
	// fjord.dev/netns annotation (a pod of a Kubernetes lab); "" if unknown.
	NetnsOf func(*corev1.Pod) string
}

// FromStore returns a Source reading st.
func FromStore(st *store.Store) *Store { return FromLister(st) }

// FromLister returns a Source reading l.
func FromLister(l Lister) *Store { return &Store{st: l, kinds: objects.Kinds()} }

func (s *Store) list(ctx context.Context, kind string) ([]objects.Object, error) {
	k, ok := s.kinds.ByName(kind)
	if !ok {
		return nil, fmt.Errorf("store has no kind %s", kind)
	}
	list, _, err := s.st.List(ctx, k, "")
	return list, err
}

// Nodes lists the Node objects. A node is Ready by its Ready condition where it has
// one (a kubelet posts it), else while its Lease exists (in fjord's store the Lease
// is attached to an etcd lease the agent keeps alive).
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	list, err := s.list(ctx, "Node")
	if err != nil {
		return nil, err
	}
	leases, err := s.list(ctx, "Lease")
	if err != nil {
		return nil, err
	}
	alive := map[string]bool{}
	for _, o := range leases {
		if o.GetNamespace() == "kube-node-lease" {
			alive[o.GetName()] = true
		}
	}
	out := make([]Node, 0, len(list))
	for _, o := range list {
		n := o.(*corev1.Node)
		rn := Node{Name: n.Name, Ready: alive[n.Name], Mode: n.Annotations["fjord.dev/backend"], VTEPMAC: n.Annotations["fjord.dev/vtep-mac"]}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				rn.Ready = c.Status == corev1.ConditionTrue
			}
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && !rn.IP.IsValid() {
				rn.IP, _ = netip.ParseAddr(a.Address)
			}
		}
		rn.PodCIDR, _ = netip.ParsePrefix(n.Spec.PodCIDR)
		out = append(out, rn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Pods lists the Pod objects.
func (s *Store) Pods(ctx context.Context) ([]Pod, error) {
	list, err := s.list(ctx, "Pod")
	if err != nil {
		return nil, err
	}
	out := make([]Pod, 0, len(list))
	for _, o := range list {
		p := o.(*corev1.Pod)
		rp := Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Netns: p.Annotations[kubelet.AnnotationNetns], Labels: p.Labels}
		if rp.Netns == "" && s.NetnsOf != nil {
			rp.Netns = s.NetnsOf(p)
		}
		rp.IP, _ = netip.ParseAddr(p.Status.PodIP)
		out = append(out, rp)
	}
	return out, nil
}

// ServicePorts builds the service map the proxies program (servicemap.Build), from
// every Service and EndpointSlice.
func (s *Store) ServicePorts(ctx context.Context) ([]servicemap.ServicePort, error) {
	svcs, err := s.list(ctx, "Service")
	if err != nil {
		return nil, err
	}
	slices, err := s.list(ctx, "EndpointSlice")
	if err != nil {
		return nil, err
	}
	var services []*corev1.Service
	for _, o := range svcs {
		services = append(services, o.(*corev1.Service))
	}
	var eps []*discoveryv1.EndpointSlice
	for _, o := range slices {
		eps = append(eps, o.(*discoveryv1.EndpointSlice))
	}
	m := servicemap.Build(services, eps, servicemap.Options{})
	out := make([]servicemap.ServicePort, 0, len(m.Ports))
	for _, k := range m.Keys() {
		out = append(out, m.Ports[k])
	}
	return out, nil
}

// IngressBackend matches host and path against every Ingress, as the ingress proxy does.
func (s *Store) IngressBackend(ctx context.Context, host, path string) (Backend, error) {
	list, err := s.list(ctx, "Ingress")
	if err != nil {
		return Backend{}, err
	}
	var ings []*networkingv1.Ingress
	for _, o := range list {
		ings = append(ings, o.(*networkingv1.Ingress))
	}
	t := route.BuildSelected(ings, func(*networkingv1.Ingress) bool { return true })
	b, ok := t.Match(host, path)
	if !ok {
		return Backend{}, fmt.Errorf("no Ingress rule matches host %q path %q: %w", host, path, ErrNotFound)
	}
	return Backend{Namespace: b.Namespace, Service: b.Service, Port: b.Port.String(), Ingress: b.Namespace + "/" + b.IngressName}, nil
}
