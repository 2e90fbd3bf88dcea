package cli

import (
	"strconv"

	"github.com/fjord-net/fjord/internal/objects"
)

// bgpColumns are the table columns of the BGP kinds, as Calico's CRDs print them.
func bgpColumns(kind string) []column {
	if kind == "BGPPeer" {
		return []column{
			{header: "PEER", value: func(o objects.Object) string { return o.(*objects.BGPPeer).Spec.PeerIP }},
			{header: "AS", value: func(o objects.Object) string {
				return strconv.FormatUint(uint64(o.(*objects.BGPPeer).Spec.ASNumber), 10)
			}},
			{header: "NODES", value: func(o objects.Object) string {
				s := o.(*objects.BGPPeer).Spec
				switch {
				case s.Node != "":
					return s.Node
				case s.NodeSelector != "":
					return s.NodeSelector
				}
				return "<all>"
			}},
		}
	}
	return []column{
		{header: "AS", value: func(o objects.Object) string {
			if as := o.(*objects.BGPConfiguration).Spec.ASNumber; as != nil {
				return strconv.FormatUint(uint64(*as), 10)
			}
			return "<default>"
		}},
		{header: "MESH", value: func(o objects.Object) string {
			if m := o.(*objects.BGPConfiguration).Spec.NodeToNodeMeshEnabled; m != nil && !*m {
				return "off"
			}
			return "on"
		}},
	}
}
