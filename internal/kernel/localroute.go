package kernel

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/podnet"
)

// EnsureLocalRoute makes every address of prefix local to this node (a "local" route
// in the local table, marked with fjord's protocol), as IPVS mode does by binding
// service IPs to a dummy device. Traffic to a service IP that nftables does not DNAT
// (a service without endpoints) is then delivered locally, where the service proxy's
// input rules reject it at once, instead of dying in routing with "network
// unreachable" or leaving by a default route. It is idempotent.
func (k *Netlink) EnsureLocalRoute(prefix netip.Prefix) error {
	lo, err := k.h.LinkByName("lo")
	if err != nil {
		return err
	}
	r := &netlink.Route{
		Dst: ipnet(prefix), LinkIndex: lo.Attrs().Index, Type: unix.RTN_LOCAL,
		Table: unix.RT_TABLE_LOCAL, Scope: unix.RT_SCOPE_HOST, Protocol: podnet.RouteProtocol,
	}
	if err := k.h.RouteReplace(r); err != nil {
		return fmt.Errorf("local route for %v: %w", prefix, err)
	}
	return nil
}
