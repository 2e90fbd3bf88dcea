package cni

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netns"
)

// invocation is what ADD and CHECK both start from: the validated config and
// identifiers, the pod's network namespace (the caller closes it), this node's pod
// network, and the chain's prevResult (nil if none).
type invocation struct {
	conf  *Config
	podNS netns.NsHandle
	node  nodeInfo
	prev  *current.Result
}

// prepare validates an invocation in the order the spec's error codes expect: config,
// identifiers, network namespace, node readiness, then prevResult. Nothing is changed.
func prepare(args *skel.CmdArgs) (*invocation, error) {
	conf, terr := ParseConfig(args.StdinData)
	if terr != nil {
		return nil, terr
	}
	if terr := validateIDs(args); terr != nil {
		return nil, terr
	}
	podNS, terr := openNetns(args.Netns)
	if terr != nil {
		return nil, terr
	}
	node, terr := readNode(conf)
	if terr != nil {
		podNS.Close()
		return nil, terr
	}
	prev, err := prevResult(conf)
	if err != nil {
		podNS.Close()
		return nil, errorf(types.ErrDecodingFailure, "prevResult: %v", err)
	}
	return &invocation{conf: conf, podNS: podNS, node: node, prev: prev}, nil
}
