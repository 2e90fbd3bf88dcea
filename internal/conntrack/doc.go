// Package conntrack deletes stale UDP conntrack entries, so that UDP clients move to a
// new endpoint at once when theirs goes away.
//
// UDP has no connection to close: after a service's DNAT picks an endpoint, conntrack
// keeps sending that client's packets to it for as long as the client keeps talking,
// even after the endpoint is gone (the long-standing kube-proxy bug class behind "DNS
// times out after a CoreDNS pod restarts"). The proxy calls a Cleaner with Selectors
// for what it removed; the kernel adapter (Netlink) deletes the matching entries with one
// table dump per call and address family, and conntracktest.Fake stands in for tests.
//
// Matching lives in one pure function, Selector.Matches, used by both.
package conntrack
