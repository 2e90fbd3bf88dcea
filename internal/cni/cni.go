// Package cni is fjord's CNI plugin (spec 1.1.0): veth into the pod's netns, IPAM from
// the node's pod CIDR, routes. The fjord binary runs it when invoked as fjord-cni or
// with CNI_COMMAND set.
package cni

import (
	"fmt"
	"os"
)

// Main runs the plugin against the process environment and returns the exit code.
func Main() int {
	fmt.Fprintln(os.Stderr, "not implemented")
	return 1
}
