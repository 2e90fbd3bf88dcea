package nftproxy

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"sigs.k8s.io/knftables"
)

// family holds what differs between ip and ip6 rules; everything else is
// one code path.
type family struct {
	nft      knftables.Family
	name     string // "IPv4" or "IPv6", for messages
	ip       string // nft expression prefix: "ip" or "ip6"
	addrType string // nft set type: "ipv4_addr" or "ipv6_addr"
	loopback string // loopback destinations excluded from NodePorts
	v6       bool
	nfproto  uint8 // netlink family: NFPROTO_IPV4 or NFPROTO_IPV6
}

func familyOf(f knftables.Family) (family, error) {
	switch f {
	case "", knftables.IPv4Family:
		return family{nft: knftables.IPv4Family, name: "IPv4", ip: "ip", addrType: "ipv4_addr", loopback: "127.0.0.0/8", nfproto: unix.NFPROTO_IPV4}, nil
	case knftables.IPv6Family:
		return family{nft: knftables.IPv6Family, name: "IPv6", ip: "ip6", addrType: "ipv6_addr", loopback: "::1", v6: true, nfproto: unix.NFPROTO_IPV6}, nil
	}
	return family{}, fmt.Errorf("nftproxy: family %q is not ip or ip6", f)
}

// has reports whether a belongs to the family.
func (f family) has(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.Is6() == f.v6
}
