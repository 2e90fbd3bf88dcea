package cni

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Status reports whether ADD can succeed: the plugin is ready iff node.json is present
// and valid (code 50 otherwise).
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, terr := ParseConfig(args.StdinData)
	if terr != nil {
		return terr
	}
	if _, terr := readNode(conf); terr != nil {
		return errorf(types.ErrPluginNotAvailable, "%s", terr.Msg)
	}
	return nil
}
