package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// Plugin-specific error codes (the spec reserves 100 and up for plugins).
const (
	// ErrNodeState: node.json exists but is unreadable or invalid.
	ErrNodeState uint = 100
	// ErrPoolExhausted: the node's pod CIDR has no free address.
	ErrPoolExhausted uint = 101
	// ErrLinkExists: the pod interface or the host veth already exists.
	ErrLinkExists uint = 102
	// ErrCheckFailed: CHECK found the attachment differs from what ADD set up.
	ErrCheckFailed uint = 103
	// ErrKernel: the kernel refused a netlink request.
	ErrKernel uint = 104
	// ErrStore: the allocation directory could not be read or written.
	ErrStore uint = 105
)

// errorf builds a spec error with a formatted message.
func errorf(code uint, format string, args ...any) *types.Error {
	return types.NewError(code, fmt.Sprintf(format, args...), "")
}
