// Package nodestate is the contract between the node agent and the CNI plugin: the
// agent writes the node's pod network parameters to a small JSON file once it holds a
// pod CIDR, and the plugin reads it on every invocation. A missing file means the agent
// is not ready yet (CNI error 11, "try again later"; STATUS reports 50).
package nodestate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// FileName is the name of the state file inside the agent's run directory.
const FileName = "node.json"

// DefaultRunDir is where a real node's agent writes FileName.
const DefaultRunDir = "/run/fjord"

// NodeNetwork is what the plugin needs to know about its node.
type NodeNetwork struct {
	Node    string       `json:"node"`
	Mode    string       `json:"mode"`    // "vxlan" or "routed"
	PodCIDR netip.Prefix `json:"podCIDR"` // this node's pod range, e.g. 10.244.1.0/24
	// Gateway is the address pods use as their next hop: the first usable address of
	// PodCIDR, configured on every host-side veth (point-to-point, like the ptp plugin).
	Gateway netip.Addr `json:"gateway"`
	// MTU is the pod interface MTU: the underlay MTU minus encapsulation overhead.
	MTU int `json:"mtu"`
	// ClusterCIDR is the whole pod network (all nodes), e.g. 10.244.0.0/16.
	ClusterCIDR netip.Prefix `json:"clusterCIDR"`
}

// ErrNotReady is returned by Read when the agent has not written the file yet.
var ErrNotReady = errors.New("fjord agent has not published this node's pod network yet")

// Validate checks the file's contents are usable.
func (n NodeNetwork) Validate() error {
	switch {
	case n.Node == "":
		return errors.New("node: must not be empty")
	case !n.PodCIDR.IsValid():
		return errors.New("podCIDR: must be a valid prefix")
	case !n.Gateway.IsValid() || !n.PodCIDR.Contains(n.Gateway):
		return fmt.Errorf("gateway: %v is not inside podCIDR %v", n.Gateway, n.PodCIDR)
	case n.MTU < 576 || n.MTU > 65535:
		return fmt.Errorf("mtu: %d is outside 576..65535", n.MTU)
	}
	return nil
}

// Read loads the node network from dir/FileName.
func Read(dir string) (NodeNetwork, error) {
	var n NodeNetwork
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return n, ErrNotReady
	}
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	if err := n.Validate(); err != nil {
		return n, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return n, nil
}

// Write stores n atomically (write to a temporary file, then rename), so a concurrent
// Read sees either the old or the new contents, never a torn file.
func Write(dir string, n NodeNetwork) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".node-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, FileName))
}
