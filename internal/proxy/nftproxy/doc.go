// Package nftproxy is fjord's nftables service proxy. A Proxier owns one
// nftables table, "fjord" in family ip (or ip6; one Proxier per family),
// and turns a servicemap.Map into one atomic nft transaction per Sync.
//
// The layout follows kube-proxy's nftables mode: verdict maps give O(1)
// dispatch from (service IP, protocol, port) and (protocol, NodePort) to a
// chain per service port, which picks an endpoint chain that does the DNAT.
// Filter-table chains reject traffic to services without endpoints. See
// layout.go for the chains, maps and sets, and dispatch.go for how each
// scheduler picks an endpoint.
//
// Syncs are incremental: the Proxier remembers what it wrote and emits only
// changed chains and map elements. A full sync lists what the table really
// holds and repairs drift. Neither ever flushes or deletes the table, so
// connections whose NAT conntrack already holds keep working across
// restarts. Chains no longer needed are flushed at once and deleted one
// grace period later (kernels before 6.2 notice late that a chain lost its
// last verdict-map reference).
//
// Every chain the Proxier writes carries a fingerprint of its rules in the
// comment of its last rule ("fp:…"); a full sync compares rule counts and
// fingerprints with what the table holds, so a restart rewrites only chains
// that differ.
//
// Reading the table is the expensive part of a full sync: nft's JSON for
// 10,000 services is tens of MB and takes seconds to produce and parse.
// With Config.Netlink (the agent's setting) nlread.go reads chains, sets,
// rule summaries and element counts straight from the kernel over netlink,
// and a periodic full sync first audits the table (its object count,
// named sets, the fixed chains, a sample of service chains, element
// counts: tens of ms at any size) and reads and reconciles all of it only when the audit finds a
// difference or once an hour (Config.FullReadPeriod).
package nftproxy
