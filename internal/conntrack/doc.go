// Package conntrack deletes stale conntrack entries, so that clients move to a new
// endpoint at once when theirs goes away: UDP entries, and TCP entries whose SYN was
// never answered.
//
// UDP has no connection to close: after a service's DNAT picks an endpoint, conntrack
// keeps sending that client's packets to it for as long as the client keeps talking,
// even after the endpoint is gone (the long-standing kube-proxy bug class behind "DNS
// times out after a CoreDNS pod restarts"). The proxy calls a Cleaner with Selectors
// for what it removed; the kernel adapter (Netlink) deletes the matching entries with one
// table dump per call and address family, and conntracktest.Fake stands in for tests.
//
// TCP connections end by themselves, but one whose SYN went unanswered (its endpoint
// was already dead) stays in conntrack, DNAT and all, for two minutes in SYN_SENT: a
// new connection that reuses the client's source port within that time is sent to the
// dead endpoint and times out (kubernetes/kubernetes#101607). Those entries are
// deleted too; answered TCP connections never are (Selector.TCP).
//
// Matching lives in one pure function, Selector.Matches, used by both.
package conntrack
