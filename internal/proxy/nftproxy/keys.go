package nftproxy

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// Names the troubleshooting tools read (fjord doctor, fjord trace).
const (
	ServiceIPsMapName         = serviceIPsMap
	NoEndpointServicesMapName = noEndpointServicesMap
	ServiceNodePortsMapName   = serviceNodePortsMap
	EndpointChainPrefix       = endpointChainPrefix
)

// ServiceIPsKey decodes a key of the service-ips or no-endpoint-services maps of an ip
// (IPv4) table, "ipv4_addr . inet_proto . inet_service": the kernel pads each
// component to 4 bytes.
func ServiceIPsKey(k []byte) (netip.AddrPort, string, bool) {
	if len(k) != 12 {
		return netip.AddrPort{}, "", false
	}
	proto := protoName(k[4])
	if proto == "" {
		return netip.AddrPort{}, "", false
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(k[0:4])), binary.BigEndian.Uint16(k[8:10])), proto, true
}

// NodePortKey decodes a key of service-nodeports ("inet_proto . inet_service").
func NodePortKey(k []byte) (uint16, string, bool) {
	if len(k) != 8 {
		return 0, "", false
	}
	proto := protoName(k[0])
	return binary.BigEndian.Uint16(k[4:6]), proto, proto != ""
}

func protoName(p byte) string {
	return map[byte]string{6: "tcp", 17: "udp", 132: "sctp"}[p]
}

// EndpointOfChain returns the endpoint an endpoint chain DNATs to, from its name
// ("ep-<hash>-<ns>/<name>/<proto>/<port>__<ip>/<port>"); ok is false for other chains.
func EndpointOfChain(name string) (netip.AddrPort, bool) {
	if !strings.HasPrefix(name, endpointChainPrefix) {
		return netip.AddrPort{}, false
	}
	_, ep, ok := strings.Cut(name, "__")
	if !ok {
		return netip.AddrPort{}, false
	}
	ip, port, ok := strings.Cut(ep, "/")
	if !ok {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(ip) // IPv4; IPv6 names write colons as dots and are not decoded
	if err != nil {
		return netip.AddrPort{}, false
	}
	p, err := netip.ParseAddrPort(a.String() + ":" + port)
	return p, err == nil
}
