package config

import "fmt"

// Notice returns a one-sentence message for the operator when the
// configuration cannot run as written on this node, or "" when it can.
// Today that is mode ipvs on a kernel without IPVS: fjord then programs the
// O(1) nftables equivalent with the same scheduler.
func (c *Config) Notice(kernelHasIPVS bool) string {
	if c.Mode != ModeIPVS || kernelHasIPVS {
		return ""
	}
	return fmt.Sprintf("mode ipvs was requested but this kernel has no IPVS, so fjord runs the O(1) nftables equivalent with the same %q scheduler.", c.Scheduler)
}
