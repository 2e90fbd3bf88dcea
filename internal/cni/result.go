package cni

import (
	"fmt"
	"io"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// buildResult describes the attachment in the spec's terms. The pod address is
// reported as a host prefix (/32, /128) because that is exactly what the pod
// interface carries: every other address is reached through the gateway. It is
// appended to prev (a chained plugin's result), if any.
func buildResult(att attachment, w wired, prev *current.Result) *current.Result {
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev != nil {
		r = prev
		r.CNIVersion = current.ImplementedSpecVersion
	}
	base := len(r.Interfaces)
	r.Interfaces = append(r.Interfaces,
		&current.Interface{Name: att.HostVeth, Mac: w.host.Attrs().HardwareAddr.String(), Mtu: att.MTU},
		&current.Interface{Name: att.Owner.IfName, Mac: w.pod.Attrs().HardwareAddr.String(), Mtu: att.MTU, Sandbox: att.Netns},
	)
	r.IPs = append(r.IPs, &current.IPConfig{
		Interface: current.Int(base + 1),
		Address:   *ipNet(hostPrefix(att.PodIP)),
		Gateway:   att.Gateway.AsSlice(),
	})
	r.Routes = append(r.Routes, &types.Route{Dst: *ipNet(defaultPrefix(att.Gateway)), GW: att.Gateway.AsSlice()})
	return r
}

// printResult writes r converted to the config's spec version.
func printResult(w io.Writer, r *current.Result, cniVersion string) error {
	v, err := r.GetAsVersion(cniVersion)
	if err != nil {
		return fmt.Errorf("converting result to %s: %w", cniVersion, err)
	}
	return v.PrintTo(w)
}

// prevResult parses the runtime-injected prevResult (nil when there is none).
func prevResult(conf *Config) (*current.Result, error) {
	if conf.RawPrevResult == nil {
		return nil, nil
	}
	pc := &types.PluginConf{CNIVersion: conf.CNIVersion, RawPrevResult: conf.RawPrevResult}
	if err := version.ParsePrevResult(pc); err != nil {
		return nil, err
	}
	return current.NewResultFromResult(pc.PrevResult)
}
