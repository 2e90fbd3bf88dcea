package l4

import (
	"net/netip"
	"slices"
)

// ServiceStats are the counters of one service. Counters start at zero when
// the service's Key first appears in Proxy.Set and are lost when it is
// removed.
type ServiceStats struct {
	Key       string
	Protocol  string
	Scheduler string
	// ListenAddr is the bound address; the zero AddrPort when the service
	// is not listening (its last listen attempt failed).
	ListenAddr netip.AddrPort
	// Endpoints lists the configured endpoints in configured order, then
	// removed endpoints that still have active connections.
	Endpoints []EndpointStats
	// NoEndpoint counts TCP connections reset and UDP datagrams dropped
	// because no endpoint could be picked or reached.
	NoEndpoint uint64
	// UDPEvicted counts UDP sessions ended to make room for a new client
	// (Options.UDPMaxSessions).
	UDPEvicted uint64
}

// EndpointStats are the counters of one endpoint of a service.
type EndpointStats struct {
	Addr   netip.AddrPort
	Weight int
	// Active is what the scheduler counts: open TCP connections and UDP
	// sessions, plus connection attempts being dialled.
	Active int
	// Total counts TCP connections and UDP sessions established.
	Total uint64
	// DialFailures counts failed attempts to connect to the endpoint.
	DialFailures uint64
	// Removed is set for an endpoint no longer in the service whose
	// connections are draining.
	Removed bool
}

// sortEndpointStats orders s by address.
func sortEndpointStats(s []EndpointStats) {
	slices.SortFunc(s, func(a, b EndpointStats) int { return a.Addr.Compare(b.Addr) })
}
