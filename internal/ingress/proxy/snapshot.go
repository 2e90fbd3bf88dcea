package proxy

import (
	"crypto/tls"
	"net/netip"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

// Snapshot is the complete desired state of the proxy. It is built by a
// controller and must not be modified after it is passed to Proxy.Swap.
type Snapshot struct {
	// Routes maps host and path to a backend. nil routes nothing.
	Routes *route.Table
	// Upstreams holds the ready endpoints of every Service port that a
	// route may name, keyed exactly as the route names it (port by number
	// or by name). A backend missing here, or with no endpoints, is
	// answered with 503.
	Upstreams map[UpstreamKey]Upstream
	// Certs holds the certificates of kubernetes.io/tls Secrets by
	// namespace/name, as referenced by Routes.TLSHosts.
	Certs map[SecretRef]*tls.Certificate
	// Config is the parsed ingress-nginx ConfigMap.
	Config nginxconf.Config
}

// UpstreamKey names a Service port as a route backend names it.
type UpstreamKey struct {
	Namespace string
	Service   string
	Port      route.Port
}

// KeyOf returns the UpstreamKey of a route backend.
func KeyOf(b route.Backend) UpstreamKey {
	return UpstreamKey{Namespace: b.Namespace, Service: b.Service, Port: b.Port}
}

// Name returns ingress-nginx's upstream name, upstream-<ns>-<svc>-<port>.
func (k UpstreamKey) Name() string {
	return nginxconf.ProxyUpstreamName(k.Namespace, k.Service, k.Port.String())
}

// Upstream is the set of ready endpoints of one Service port.
type Upstream struct {
	Endpoints []netip.AddrPort
}

// SecretRef names a Secret.
type SecretRef struct {
	Namespace, Name string
}
