// Package cni is fjord's CNI plugin (spec 1.1.0; configs at 0.4.0 and 1.0.0 work too):
// a routed veth pair per pod (ptp style, no bridge), addresses from the node's pod CIDR
// (internal/ipam, on disk under dataDir), and the node parameters the agent publishes
// in node.json (internal/nodestate). The fjord binary runs Main when invoked as
// fjord-cni or with CNI_COMMAND set.
//
// It owns: host interfaces named "fj"+11 hex digits whose alias is "fjord/<network>",
// the pod interface CNI_IFNAME it creates, and the allocation directory
// <dataDir>/<network>. Every command decides what the attachment should look like
// (attachment, plain data) before touching the kernel, and ADD undoes each step it took
// if a later one fails.
package cni

import (
	"encoding/json"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// SupportedVersions are the CNI spec versions fjord speaks. Debian's reference plugins
// stop at 1.0.0, so configs at 0.4.0 and 1.0.0 must work; results are converted to
// the config's version.
var SupportedVersions = []string{"0.4.0", "1.0.0", "1.1.0"}

// Plugin carries the plugin's environment. Its methods are the CNI commands; they take
// *skel.CmdArgs so tests call them without a process.
type Plugin struct {
	// Stdout receives results (ADD) and the version document.
	Stdout io.Writer

	// fault, when set, is called after every step of ADD; an error aborts ADD at that
	// step, so tests can prove the rollback. Nil in production.
	fault func(step string) error
}

// Main runs the plugin against the process environment and returns the exit code.
func Main() int {
	p := &Plugin{Stdout: os.Stdout}
	funcs := skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
	if err := skel.PluginMainFuncsWithError(funcs, version.PluginSupports(SupportedVersions...), "fjord CNI plugin"); err != nil {
		_ = json.NewEncoder(p.Stdout).Encode(err) // the spec's error document
		return 1
	}
	return 0
}

// step reports the end of an ADD step to the fault hook.
func (p *Plugin) step(name string) error {
	if p.fault == nil {
		return nil
	}
	return p.fault(name)
}
