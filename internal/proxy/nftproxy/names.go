package nftproxy

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"sigs.k8s.io/knftables"
)

// Prefixes of per-service object names. Names are
// "<prefix><hash>-<ns>/<name>/<proto>/<port>[__<ip>/<port>]": the hash keeps
// them unique when the readable part is cut to fit nft's name limit.
const (
	clusterChainPrefix  = "svc-" // cluster-policy dispatch
	localChainPrefix    = "loc-" // local-policy dispatch
	externalChainPrefix = "ext-" // external traffic (NodePort, external and LB IPs)
	endpointChainPrefix = "ep-"  // DNAT to one endpoint
	affinitySetPrefix   = "aff-" // ClientIP affinity per endpoint
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strings.ToLower(b32.EncodeToString(h.Sum(nil))[:8])
}

// readable is "ns/name/proto/port" for a service port.
func readable(sp *servicemap.ServicePort) string {
	return sp.Namespace + "/" + sp.Name + "/" + strings.ToLower(string(sp.Protocol)) + "/" + sp.PortName
}

func objName(prefix, hash, text string) string {
	name := prefix + hash + "-" + text
	if len(name) > knftables.NameLengthMax-1 {
		name = name[:knftables.NameLengthMax-1]
	}
	return name
}

func serviceChainName(prefix string, sp *servicemap.ServicePort) string {
	return objName(prefix, shortHash(sp.Key()), readable(sp))
}

func endpointObjName(prefix string, sp *servicemap.ServicePort, ep netip.AddrPort) string {
	return objName(prefix, shortHash(sp.Key(), ep.String()), readable(sp)+"__"+endpointText(ep))
}

// endpointText is "ip/port"; an IPv6 address has its colons written as
// dots, since nft identifiers cannot contain colons.
func endpointText(ep netip.AddrPort) string {
	return strings.ReplaceAll(ep.Addr().String(), ":", ".") + "/" + itoa(int(ep.Port()))
}
