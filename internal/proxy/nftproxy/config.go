package nftproxy

import (
	"fmt"
	"net/netip"
	"time"

	"sigs.k8s.io/knftables"
)

// TableName is the nftables table a Proxier owns.
const TableName = "fjord"

// DefaultMasqueradeMark is the packet mark bit that asks for masquerade
// (the same bit kube-proxy uses).
const DefaultMasqueradeMark = 0x4000

// DefaultMaglevTableSize is the Maglev lookup table size nftproxy installs
// per maglev service: a prime (the smallest IPVS mh accepts). Each maglev
// service port gets an anonymous verdict map with this many elements, so it
// is kept small; the Maglev paper's balance bound (M > 100·N) holds up to
// 2 endpoints and imbalance stays under ±1/M·N slots beyond.
const DefaultMaglevTableSize = 251

// MaxWRRSlots caps the slots of a wrr verdict map. When the sum of weights
// exceeds it, weights are scaled down proportionally (each endpoint keeps at
// least one slot).
const MaxWRRSlots = 256

// Config is a Proxier's static configuration.
type Config struct {
	// Family is knftables.IPv4Family (the default) or IPv6Family. Only
	// addresses of this family are programmed.
	Family knftables.Family
	// NodeIPs are the addresses NodePorts answer on (kube-proxy's
	// nodePortAddresses resolved to addresses). Empty means every local
	// address except loopback (nft "fib daddr type local"); non-empty but
	// with no address of this family (after dropping excluded ones) means
	// no NodePorts. Loopback addresses are ignored: as in kube-proxy's
	// nftables mode, there are no localhost NodePorts.
	NodeIPs []netip.Addr
	// DisableNodePorts turns NodePorts off on this node (for example when
	// nodePortAddresses matches none of its addresses).
	DisableNodePorts bool
	// ServiceCIDRs are the service ranges. New connections to an address
	// in them that is not a cluster IP are dropped (as kube-proxy does),
	// so that a node that routes the range locally does not expose its
	// own sockets on unallocated service IPs. Empty: no such rule.
	ServiceCIDRs []netip.Prefix
	// ClusterCIDR is the pod network. Traffic to a cluster IP from outside
	// it is masqueraded; from pods it keeps its source. The zero Prefix
	// disables that masquerade (and ETP=Local's pod short-circuit).
	ClusterCIDR netip.Prefix
	// ExcludeCIDRs are addresses the Proxier leaves alone: service IPs
	// (cluster, external, load-balancer) inside them are not captured and
	// node IPs inside them get no NodePorts. (In IPVS mode they protect
	// foreign virtual servers from cleanup; nftables mode owns only its
	// table, so this is the closest meaning.)
	ExcludeCIDRs []netip.Prefix
	// UserspacePorts is the port range (first, last) of the userspace L4
	// proxy's listeners (lc and wlc services). The listeners bind the
	// wildcard address, because a redirect goes to the primary address of
	// the interface a packet arrived on; so the input rules drop every new
	// TCP or UDP connection to the range that fjord's own redirect did not
	// send there (conntrack status dnat unset): a node's address and port
	// 61000 reach nothing from outside. Zero: no such rule.
	UserspacePorts [2]uint16
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeMark is the mark bit for masquerade; 0 means
	// DefaultMasqueradeMark.
	MasqueradeMark uint32
	// HashSeed seeds jhash for the sh and maglev schedulers. Nodes that
	// should send a client to the same endpoint must share it.
	HashSeed uint32
	// MaglevTableSize is the Maglev table size, a prime; 0 means
	// DefaultMaglevTableSize.
	MaglevTableSize int
	// StaleChainGrace is how long a flushed chain waits before it is
	// deleted; 0 means one second.
	StaleChainGrace time.Duration
	// Netlink makes full syncs read the table from the kernel over netlink
	// (chains, sets, maps, per-chain rule summaries, element counts)
	// instead of parsing nft's JSON, which at thousands of services takes
	// seconds and hundreds of megabytes. It needs the real kernel, so it is
	// off with knftables' fake; the agent turns it on.
	//
	// With Netlink, a full sync first audits the table cheaply (the same
	// chains, sets and maps; the fixed chains' rules; as many elements in
	// each fixed set and map) and reads and reconciles all of it only when
	// the audit finds a difference, after a failed sync, or when
	// FullReadPeriod has passed since the last full read.
	Netlink bool
	// FullReadPeriod is the longest a Netlink Proxier relies on audits; 0
	// means one hour, kube-proxy's interval between its full syncs.
	FullReadPeriod time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// settings is Config validated, with defaults applied and the addresses
// of other families dropped.
type settings struct {
	fam          family
	nodeIPs      []netip.Addr
	noNodePorts  bool
	serviceCIDRs []netip.Prefix
	clusterCIDR  netip.Prefix
	exclude      []netip.Prefix
	masqAll      bool
	mark         string
	hashSeed     uint32
	maglevSize   int
	grace        time.Duration
	now          func() time.Time
	wrrMaxSlots  int
	netlink      bool
	fullRead     time.Duration
	userspace    [2]uint16
}

func newSettings(c Config) (*settings, error) {
	fam, err := familyOf(c.Family)
	if err != nil {
		return nil, err
	}
	s := &settings{fam: fam, masqAll: c.MasqueradeAll, hashSeed: c.HashSeed, now: c.Now, grace: c.StaleChainGrace, wrrMaxSlots: MaxWRRSlots}
	if s.now == nil {
		s.now = time.Now
	}
	if s.grace <= 0 {
		s.grace = time.Second
	}
	s.netlink, s.fullRead = c.Netlink, c.FullReadPeriod
	if s.fullRead <= 0 {
		s.fullRead = time.Hour
	}
	mark := c.MasqueradeMark
	if mark == 0 {
		mark = DefaultMasqueradeMark
	}
	if mark&(mark-1) != 0 {
		return nil, fmt.Errorf("nftproxy: MasqueradeMark %#x must be a single bit", mark)
	}
	s.mark = fmt.Sprintf("%#x", mark)
	s.maglevSize = c.MaglevTableSize
	if s.maglevSize == 0 {
		s.maglevSize = DefaultMaglevTableSize
	}
	if !isPrime(s.maglevSize) || s.maglevSize > 65521 {
		return nil, fmt.Errorf("nftproxy: MaglevTableSize %d must be a prime no larger than 65521", s.maglevSize)
	}
	for _, p := range c.ExcludeCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("nftproxy: ExcludeCIDRs: invalid prefix %v", p)
		}
		if fam.has(p.Addr()) {
			s.exclude = append(s.exclude, p.Masked())
		}
	}
	for _, p := range c.ServiceCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("nftproxy: ServiceCIDRs: invalid prefix %v", p)
		}
		if fam.has(p.Addr()) {
			s.serviceCIDRs = append(s.serviceCIDRs, p.Masked())
		}
	}
	if u := c.UserspacePorts; u != [2]uint16{} {
		if u[0] == 0 || u[0] > u[1] {
			return nil, fmt.Errorf("nftproxy: UserspacePorts %d-%d is not a port range", u[0], u[1])
		}
		s.userspace = u
	}
	s.noNodePorts = c.DisableNodePorts
	if c.ClusterCIDR.IsValid() {
		if !fam.has(c.ClusterCIDR.Addr()) {
			return nil, fmt.Errorf("nftproxy: ClusterCIDR %v is not an %s prefix", c.ClusterCIDR, fam.name)
		}
		s.clusterCIDR = c.ClusterCIDR.Masked()
	}
	seen := map[netip.Addr]bool{}
	for _, a := range c.NodeIPs {
		a = a.Unmap()
		if !fam.has(a) || a.IsLoopback() || s.excluded(a) || seen[a] {
			continue
		}
		seen[a] = true
		s.nodeIPs = append(s.nodeIPs, a)
	}
	if len(c.NodeIPs) > 0 && len(s.nodeIPs) == 0 {
		// Node addresses were given, none usable in this family: no
		// NodePorts, rather than NodePorts on every address.
		s.noNodePorts = true
	}
	return s, nil
}

// excluded reports whether a is inside ExcludeCIDRs.
func (s *settings) excluded(a netip.Addr) bool {
	for _, p := range s.exclude {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
