package cni

import (
	"errors"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/fjord-net/fjord/internal/ipam"
	"github.com/fjord-net/fjord/internal/nodestate"
)

// nodeInfo is what the commands need from node.json.
type nodeInfo struct {
	net  nodestate.NodeNetwork
	pool ipam.Pool
	mtu  int // the config's override, or node.json's
}

// readNode loads node.json. Not yet written: code 11 (try again later); unusable:
// ErrNodeState.
func readNode(conf *Config) (nodeInfo, *types.Error) {
	n, err := nodestate.Read(conf.RunDir)
	if errors.Is(err, nodestate.ErrNotReady) {
		return nodeInfo{}, errorf(types.ErrTryAgainLater, "%v (no %s/%s yet); retry when the agent is running", err, conf.RunDir, nodestate.FileName)
	}
	if err != nil {
		return nodeInfo{}, errorf(ErrNodeState, "node state: %v", err)
	}
	pool, err := ipam.NewPool(n.PodCIDR, n.Gateway)
	if err != nil {
		return nodeInfo{}, errorf(ErrNodeState, "node state %s/%s: %v", conf.RunDir, nodestate.FileName, err)
	}
	mtu := n.MTU
	if conf.MTU != 0 {
		mtu = conf.MTU
	}
	return nodeInfo{net: n, pool: pool, mtu: mtu}, nil
}
