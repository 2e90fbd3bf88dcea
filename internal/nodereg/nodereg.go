// Package nodereg is the agent's seam to whoever owns Node objects: how a node
// publishes what its peers need to reach its pods, how it gets its pod CIDR, how it
// proves it is alive and how it reports conditions. In the spirit of flannel's
// subnet.Manager, it has two implementations:
//
//   - Etcd: fjord's own store. The agent creates and updates its Node, claims a pod
//     CIDR with an etcd compare-and-swap, and keeps a Lease whose key is attached to
//     an etcd lease (it vanishes when the agent dies).
//   - Kubernetes: a real cluster. The kubelet creates the Node and renews its Lease;
//     the controller-manager usually allocates spec.podCIDRs. The agent only adds its
//     annotations, waits for a pod CIDR, allocates one itself when none comes (a claim
//     annotation checked against every other Node, then an optimistic update of its
//     Node), and sets its conditions.
//
// The rest of the agent does not know which one runs.
package nodereg

import (
	"context"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Annotations fjord publishes on its Node, read by every other node's agent.
const (
	AnnotationBackend = "fjord.dev/backend"   // vxlan or routed
	AnnotationVTEPMAC = "fjord.dev/vtep-mac"  // the node's vxlan device MAC
	AnnotationNodeIP  = "fjord.dev/public-ip" // underlay address peers send to
	// AnnotationPodCIDRClaim is a pod CIDR the node's agent is about to take, where
	// nothing allocates them (Kubernetes without --allocate-node-cidrs).
	AnnotationPodCIDRClaim = "fjord.dev/pod-cidr-claim"
	// AnnotationBGPASNumber is the node's AS in bgp mode (objects.AnnotationBGPASNumber).
	AnnotationBGPASNumber = "fjord.dev/bgp-as-number"
)

// LeaseNamespace holds one Lease per node, named after it, as in Kubernetes.
const LeaseNamespace = "kube-node-lease"

// Identity is what a node publishes about its pod network.
type Identity struct {
	Node    string
	NodeIP  netip.Addr
	Backend string // "vxlan" or "routed"
	VTEPMAC string // "" unless vxlan (or bgp with VXLAN towards some nodes)
	BGPAS   string // bgp mode: the node's AS number (fjord.dev/bgp-as-number); "" = leave it
	// Labels are added to the Node (--node-labels, as the kubelet's flag: where the
	// agent registers the Node itself, nothing else would label it). Others stay.
	Labels map[string]string
}

// Pool is the cluster's pod network and the size of each node's share.
type Pool struct {
	CIDR netip.Prefix
	Bits int
}

// Registrar registers a node and keeps it registered.
type Registrar interface {
	// Register publishes id on the node's Node (creating the Node where the agent
	// owns it), keeping everything else others wrote.
	Register(ctx context.Context, id Identity) error
	// PodCIDR returns the node's pod CIDR, claiming a free one from pool if it has none.
	PodCIDR(ctx context.Context, node string, pool Pool) (netip.Prefix, error)
	// KeepAlive proves the node alive until ctx ends (a no-op where the kubelet does it).
	KeepAlive(ctx context.Context, node string) error
	// SetCondition sets one condition in the Node's status (by type), leaving the rest.
	SetCondition(ctx context.Context, node string, c corev1.NodeCondition) error
}

// Permanent wraps an error that retrying cannot fix (a full pool, say).
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }

// setAnnotations writes id's annotations (and labels) into a Node's metadata and reports
// whether anything changed.
func setAnnotations(n *corev1.Node, id Identity) bool {
	changed := false
	set := func(k, v string) {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		if n.Annotations[k] != v {
			n.Annotations[k] = v
			changed = true
		}
	}
	set(AnnotationBackend, id.Backend)
	set(AnnotationNodeIP, id.NodeIP.String())
	setOrDelete := func(k, v string) {
		if v != "" {
			set(k, v)
		} else if _, ok := n.Annotations[k]; ok {
			delete(n.Annotations, k)
			changed = true
		}
	}
	setOrDelete(AnnotationVTEPMAC, id.VTEPMAC)
	for k, v := range id.Labels {
		if n.Labels[k] != v {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[k] = v
			changed = true
		}
	}
	// An AS set on the Node by hand stays when the agent has none of its own.
	if id.BGPAS != "" {
		set(AnnotationBGPASNumber, id.BGPAS)
	}
	return changed
}

// setCondition puts c into conds by type; the transition time moves only when the
// status changes. It reports whether anything changed.
func setCondition(conds *[]corev1.NodeCondition, c corev1.NodeCondition) bool {
	for i, old := range *conds {
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			return false
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		(*conds)[i] = c
		return true
	}
	*conds = append(*conds, c)
	return true
}
