// Package resolve answers "where is it?" for the troubleshooting tools: which node,
// network namespace, address and host interface a pod has; which cluster IP, ports,
// scheduler and endpoints a Service has; which underlay address and namespace a node
// has. Answers are plain data.
//
// Two sources implement Source: Local reads what this machine knows on its own (the
// lab's description, the agents' node.json, the CNI result cache every libcni runtime
// keeps), so `fjord exec` works while the store is down; Store reads the objects in
// etcd. Merge combines them: local facts (namespaces, host interfaces) fill in what the
// store cannot know, and the store fills in what the machine cannot (Services, labels).
// A Kubernetes-API source only has to implement the four methods of Source.
package resolve

import (
	"context"
	"errors"
	"net/netip"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// Pod is where a pod runs.
type Pod struct {
	Namespace, Name string
	Node            string     // "" when unknown
	IP              netip.Addr // invalid when it has none yet
	// Netns is the path of its network namespace ("" when this machine does not
	// know it: the pod runs elsewhere, or the runtime keeps no record).
	Netns string
	// HostVeth is the host-side interface of its veth pair on its node ("" unknown).
	HostVeth string
	// MTU of its interface as the CNI plugin set it (0 unknown).
	MTU    int
	Labels map[string]string
}

// Key is "namespace/name".
func (p Pod) Key() string { return p.Namespace + "/" + p.Name }

// Node is one node of the cluster.
type Node struct {
	Name    string
	IP      netip.Addr   // underlay (InternalIP)
	PodCIDR netip.Prefix // invalid until it claimed one
	// Here is true when this machine can act as the node: Netns is then its network
	// namespace ("" = the current one). Every node of a lab is Here; on a real node
	// only the node itself is.
	Here  bool
	Netns string
	// Ready is false when its liveness lease expired (always true from Local).
	Ready bool
	// Mode is the pod network mode ("vxlan" or "routed"), "" when unknown.
	Mode string
	// PodMTU is the MTU the node gives pods (0 unknown).
	PodMTU int
	// VTEPMAC is the MAC of its vxlan device as published ("" unknown).
	VTEPMAC string
	// RunDir holds the node's node.json ("" unknown).
	RunDir string
}

// Backend is the Service an ingress routes a request to.
type Backend struct {
	Namespace, Service string
	// Port is the Service port's number, or its name when the Ingress names it.
	Port string
	// Ingress is "namespace/name" of the Ingress whose rule matched.
	Ingress string
}

// Source is where answers come from. Implementations return every object they know;
// the lookups below search them.
type Source interface {
	Nodes(ctx context.Context) ([]Node, error)
	Pods(ctx context.Context) ([]Pod, error)
	// ServicePorts returns one entry per (Service, port), with its endpoints, as the
	// service proxy programs it.
	ServicePorts(ctx context.Context) ([]servicemap.ServicePort, error)
	// IngressBackend returns the backend an ingress sends host+path to.
	IngressBackend(ctx context.Context, host, path string) (Backend, error)
}

// ErrNotFound is wrapped by lookups that found nothing.
var ErrNotFound = errors.New("not found")

// ErrNeedsStore is returned by Local for what only the store knows.
var ErrNeedsStore = errors.New("only the store knows this (is it up? --etcd-endpoints)")
