// Package l4 is fjord's userspace layer-4 proxy for services whose
// scheduler needs a decision per connection that nftables cannot make:
// least connections (lc) and weighted least connections (wlc), which suit
// long-lived sockets. nftables redirects such a service's traffic to a
// local port; this package listens there, picks an endpoint per TCP
// connection or per UDP client with a scheduler from package sched, and
// copies bytes both ways.
//
// The package owns the listening sockets of those services, the
// connections and UDP sessions it opens to endpoints, and the
// active-connection counts that feed the schedulers. It owns no kernel
// state: the redirect rules belong to the nftables proxier.
//
// # Model
//
// [Proxy.Set] takes the whole desired set of [Service] values and may be
// called again with the same or a different set. It starts listeners for
// new services, closes the listeners of removed ones and, for a service
// whose endpoints or scheduler changed, swaps in a new scheduler without
// touching established connections: a connection keeps the endpoint it was
// given, and the active-connection counts of endpoints that remain are
// carried into the new scheduler, so lc and wlc keep balancing on the real
// load. Established TCP connections of a removed service also run until
// either side ends them, as they would under kernel conntrack;
// [Proxy.Close] ends everything.
//
// TCP: each accepted connection is scheduled, then dialled with
// Options.DialTimeout. When the dial fails the next endpoint the scheduler
// offers is tried, at most once per endpoint; when none answers, or the
// service has no endpoint, the client connection is reset (SO_LINGER 0).
// A failed endpoint is not remembered: the next connection may try it
// again. With sh and maglev a client always hashes to the same endpoint,
// so they get one attempt; with lc and wlc a failed attempt's pick stays
// counted until the connection is placed, which moves the next pick on,
// within a bound of 1024 extra picks. Data is copied in both directions with half-close: EOF from one side
// becomes a FIN (CloseWrite) to the other, and the connection is counted
// as active until both directions have ended.
//
// UDP: each client address gets a session holding the picked endpoint and a
// connected UDP socket to it; replies from that socket are sent back to the
// client from the listening socket. A session ends after
// Options.UDPIdleTimeout without traffic in either direction, when its
// endpoint answers with ICMP port unreachable, or at once when its
// endpoint is removed from the service, so the client's next datagram is
// scheduled afresh. Per-client state is bounded: at most
// Options.UDPMaxSessions sessions per service (a new client beyond it ends
// the least recently heard-from session), and a session waits for replies
// without a buffer, borrowing a 64 KiB one from a pool only while a
// datagram is moved. Only the service's one read loop holds a buffer for
// good.
//
// Who may reach the listeners is not this package's business: they bind
// the wildcard address (nftables redirects to the primary address of the
// interface a packet came in on, which differs per interface), and the
// nftables proxier drops every new connection to the userspace port range
// that its own rules did not redirect there (nftproxy Config.UserspacePorts).
//
// # Trade-offs
//
//   - No source preservation: endpoints see the node's address as the
//     source of every connection, not the client's. Services that need
//     the client address should not use lc or wlc.
//   - Every byte crosses userspace once more than under nftables DNAT
//     (for TCP to TCP, Go's io.Copy uses splice(2), which keeps the data in
//     the kernel but still costs syscalls and a goroutine pair per
//     connection). UDP datagrams are copied through a buffer.
//   - In exchange, balancing is true least-connection: the scheduler sees
//     every connection open and close.
//
// Schedulers are not safe for concurrent use, so each service serialises
// its picks behind one mutex; a pick is O(endpoints). sched.LeastConn has
// no way to set its counts directly, so carrying counts into a new lc/wlc
// scheduler replays picks and releases (see seed), which costs
// O(endpoints² × largest active count) per change of the endpoint set.
//
// Stats are plain counters read with [Proxy.Stats]; this package exports no
// metrics itself.
package l4
