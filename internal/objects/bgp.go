package objects

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// FjordAPIVersion is the group and version of fjord's own kinds (the BGP objects), served
// by fjord's store and, in a Kubernetes cluster, by the CRDs in deploy/fjord-bgp-crds.yaml.
const FjordAPIVersion = "fjord.dev/v1"

// AnnotationBGPASNumber on a Node sets that node's AS number (Calico keeps it in its Node's
// spec.bgp.asNumber); the agent's --bgp-as flag writes it. Without it a node takes the
// BGPConfiguration's asNumber.
const AnnotationBGPASNumber = "fjord.dev/bgp-as-number"

// LabelRack is the label the lab puts on a node to say which rack it is in; BGPPeers
// select a rack's nodes with it (nodeSelector: "fjord.dev/rack=r1").
const LabelRack = "fjord.dev/rack"

// BGPConfiguration is the cluster's BGP settings, in the shape of Calico's
// BGPConfiguration (same field names where they fit). The one named "default" applies to
// every node; one named "node.<node name>" overrides it for that node, as in Calico.
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPConfigurationSpec `json:"spec,omitempty"`
}

// BGPConfigurationSpec holds the settings; every field is optional.
type BGPConfigurationSpec struct {
	// ASNumber is the default AS of nodes that set none themselves (default 64512).
	ASNumber *uint32 `json:"asNumber,omitempty"`
	// NodeToNodeMeshEnabled peers every node with every other (default true). Turn it
	// off when nodes peer only with routers (BGPPeer objects).
	NodeToNodeMeshEnabled *bool `json:"nodeToNodeMeshEnabled,omitempty"`
	// ListenPort is the TCP port speakers listen on and dial (default 179).
	ListenPort uint16 `json:"listenPort,omitempty"`
	// NodeMeshMaxRestartTime is the graceful-restart time nodes announce (default 120s):
	// how long peers keep a restarting node's routes.
	NodeMeshMaxRestartTime *metav1.Duration `json:"nodeMeshMaxRestartTime,omitempty"`
	// HoldTime (a fjord field) is the BGP hold time of every session (default 9s,
	// keepalives every third of it): how long a silent peer keeps its routes.
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`
	// ServiceClusterIPs, ServiceExternalIPs and ServiceLoadBalancerIPs are ranges every
	// node advertises, so routers outside the cluster reach Services through any node.
	ServiceClusterIPs      []CIDRBlock `json:"serviceClusterIPs,omitempty"`
	ServiceExternalIPs     []CIDRBlock `json:"serviceExternalIPs,omitempty"`
	ServiceLoadBalancerIPs []CIDRBlock `json:"serviceLoadBalancerIPs,omitempty"`
}

// CIDRBlock is one advertised range.
type CIDRBlock struct {
	CIDR string `json:"cidr"`
}

// BGPPeer is a BGP session from nodes to a router (a top-of-rack switch, a route
// reflector), in the shape of Calico's BGPPeer.
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPPeerSpec `json:"spec,omitempty"`
}

// BGPPeerSpec says which nodes peer with which address. Node and NodeSelector are
// exclusive; with neither, every node peers.
type BGPPeerSpec struct {
	// Node is the one node that peers.
	Node string `json:"node,omitempty"`
	// NodeSelector picks the nodes that peer by their labels, in Kubernetes selector
	// syntax ("fjord.dev/rack=r1"; Calico writes "rack == 'r1'").
	NodeSelector string `json:"nodeSelector,omitempty"`
	// PeerIP is the router's address, optionally with a port ("198.18.190.254" or
	// "198.18.190.254:1179").
	PeerIP string `json:"peerIP"`
	// ASNumber is the router's AS.
	ASNumber uint32 `json:"asNumber"`
	// MaxRestartTime is the graceful-restart time announced to this peer (default: the
	// BGPConfiguration's nodeMeshMaxRestartTime).
	MaxRestartTime *metav1.Duration `json:"maxRestartTime,omitempty"`
	// NumAllowedLocalASNumbers accepts routes whose AS path holds the node's own AS up to
	// this many times: nodes of one rack share an AS, and the router hands each the
	// others' routes through itself.
	NumAllowedLocalASNumbers uint8 `json:"numAllowedLocalASNumbers,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (in *BGPConfiguration) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopy returns a copy sharing nothing with in.
func (in *BGPConfiguration) DeepCopy() *BGPConfiguration {
	if in == nil {
		return nil
	}
	out := &BGPConfiguration{TypeMeta: in.TypeMeta}
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s := in.Spec
	if s.ASNumber != nil {
		v := *s.ASNumber
		s.ASNumber = &v
	}
	if s.NodeToNodeMeshEnabled != nil {
		v := *s.NodeToNodeMeshEnabled
		s.NodeToNodeMeshEnabled = &v
	}
	s.NodeMeshMaxRestartTime = copyDuration(s.NodeMeshMaxRestartTime)
	s.HoldTime = copyDuration(s.HoldTime)
	s.ServiceClusterIPs = append([]CIDRBlock(nil), s.ServiceClusterIPs...)
	s.ServiceExternalIPs = append([]CIDRBlock(nil), s.ServiceExternalIPs...)
	s.ServiceLoadBalancerIPs = append([]CIDRBlock(nil), s.ServiceLoadBalancerIPs...)
	out.Spec = s
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *BGPPeer) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopy returns a copy sharing nothing with in.
func (in *BGPPeer) DeepCopy() *BGPPeer {
	if in == nil {
		return nil
	}
	out := &BGPPeer{TypeMeta: in.TypeMeta, Spec: in.Spec}
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec.MaxRestartTime = copyDuration(in.Spec.MaxRestartTime)
	return out
}

func copyDuration(d *metav1.Duration) *metav1.Duration {
	if d == nil {
		return nil
	}
	v := *d
	return &v
}
