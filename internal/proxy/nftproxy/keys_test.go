package nftproxy

import (
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

func TestKeysAndEndpointChains(t *testing.T) {
	ap, proto, ok := ServiceIPsKey([]byte{10, 96, 0, 2, 6, 0, 0, 0, 0, 80, 0, 0})
	if !ok || ap != netip.MustParseAddrPort("10.96.0.2:80") || proto != "tcp" {
		t.Fatalf("%v %s %v", ap, proto, ok)
	}
	if _, _, ok := ServiceIPsKey([]byte{1, 2}); ok {
		t.Fatal("short key accepted")
	}
	if port, proto, ok := NodePortKey([]byte{17, 0, 0, 0, 0x75, 0x30, 0, 0}); !ok || port != 30000 || proto != "udp" {
		t.Fatalf("%d %s %v", port, proto, ok)
	}
	// The names nftproxy writes decode back to their endpoint.
	sp := &servicemap.ServicePort{Namespace: "default", Name: "echo", PortName: "http", Protocol: "TCP"}
	ep := netip.MustParseAddrPort("10.244.2.2:8080")
	if got, ok := EndpointOfChain(endpointObjName(endpointChainPrefix, sp, ep)); !ok || got != ep {
		t.Fatalf("%v %v", got, ok)
	}
	if _, ok := EndpointOfChain(serviceChainName(clusterChainPrefix, sp)); ok {
		t.Fatal("a service chain is not an endpoint chain")
	}
}
