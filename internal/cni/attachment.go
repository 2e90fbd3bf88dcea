package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"

	"github.com/fjord-net/fjord/internal/ipam"
)

// hostVethPrefix starts every host-side interface fjord creates.
const hostVethPrefix = "fj"

// attachment is what one pod interface should look like, as plain data: ADD makes the
// kernel match it, CHECK compares the kernel against it.
type attachment struct {
	Owner    ipam.Owner
	Netns    string     // CNI_NETNS, reported as the pod interface's sandbox
	HostVeth string     // HostVethName(Owner)
	Alias    string     // hostAlias(network): marks the host veth as this network's
	PodIP    netip.Addr // on the pod interface as a host prefix (/32 or /128)
	Gateway  netip.Addr // on every host veth as a host prefix; the pods' next hop
	MTU      int        // both ends
}

// HostVethName is the host-side interface name of containerID's ifName: "fj" and the
// first 11 hex digits of sha256(containerID + "/" + ifName), 13 characters, so DEL,
// CHECK and GC find it again without state.
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return hostVethPrefix + hex.EncodeToString(sum[:])[:11]
}

// hostAlias is the interface alias fjord sets on host veths of network name, so GC
// only ever deletes its own network's interfaces.
func hostAlias(network string) string { return "fjord/" + network }

// isHostVethName reports whether name has the shape HostVethName produces.
func isHostVethName(name string) bool {
	if len(name) != len(hostVethPrefix)+11 || !strings.HasPrefix(name, hostVethPrefix) {
		return false
	}
	_, err := hex.DecodeString(name[len(hostVethPrefix):] + "0")
	return err == nil
}

func newAttachment(network, netnsPath string, o ipam.Owner, ip, gw netip.Addr, mtu int) attachment {
	return attachment{
		Owner: o, Netns: netnsPath, HostVeth: HostVethName(o.ContainerID, o.IfName),
		Alias: hostAlias(network), PodIP: ip, Gateway: gw, MTU: mtu,
	}
}

// hostPrefix is a as a single-address prefix.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// defaultPrefix is the default route's destination in a's family.
func defaultPrefix(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	return netip.MustParsePrefix("::/0")
}

// ipNet converts for netlink and the CNI types.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
