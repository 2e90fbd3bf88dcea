package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// TCPSynSent is conntrack's TCP state of a connection whose SYN has had no answer
// (TCP_CONNTRACK_SYN_SENT).
const TCPSynSent = 1

// Flow is the part of one conntrack entry a Selector looks at.
type Flow struct {
	Protocol uint8
	OrigSrc  netip.AddrPort // the client
	OrigDst  netip.AddrPort // where the client sent: service IP:port, or node IP:nodePort
	ReplySrc netip.AddrPort // who answers after DNAT: the endpoint
	TCPState uint8          // conntrack's TCP state (TCP only)
}

func (f Flow) String() string {
	return fmt.Sprintf("proto=%d %s -> %s (reply from %s)", f.Protocol, f.OrigSrc, f.OrigDst, f.ReplySrc)
}

// Selector picks UDP entries, or (Protocol ProtoTCP, see TCP) TCP entries that never
// had an answer. A zero field matches anything, but a selector must name at least one
// address: an empty one would match every UDP flow on the node.
type Selector struct {
	Protocol    uint8      // ProtoUDP (also when 0) or ProtoTCP
	OrigDst     netip.Addr // the service IP
	OrigDstPort uint16     // the service port, or a node port
	ReplySrc    netip.Addr // the endpoint
}

// ServiceEndpoint selects flows a client sent to serviceIP:port that were DNATed to
// endpoint: what to delete when that endpoint leaves the service.
func ServiceEndpoint(serviceIP netip.Addr, port uint16, endpoint netip.Addr) Selector {
	return Selector{OrigDst: serviceIP, OrigDstPort: port, ReplySrc: endpoint}
}

// NodePortEndpoint selects flows sent to any node address on nodePort that were DNATed
// to endpoint: what to delete when that endpoint leaves a NodePort service.
func NodePortEndpoint(nodePort uint16, endpoint netip.Addr) Selector {
	return Selector{OrigDstPort: nodePort, ReplySrc: endpoint}
}

// ServiceIP selects every flow sent to serviceIP:port (port 0 = any port): what to delete
// when a service is removed, or when it gets its first endpoint after entries were made
// while it had none (those flows are stuck on the reject path).
func ServiceIP(serviceIP netip.Addr, port uint16) Selector {
	return Selector{OrigDst: serviceIP, OrigDstPort: port}
}

// TCP makes s select TCP entries instead of UDP ones, and of those only the ones whose
// SYN never had an answer (SYN_SENT): the client has given up on them, but conntrack
// keeps them, and their DNAT, for two minutes, so a new connection that happens to reuse
// the client's source port would be sent to the endpoint that went away and time out.
// An answered connection is never selected: it may still be finishing on an endpoint
// that is terminating.
func (s Selector) TCP() Selector {
	s.Protocol = ProtoTCP
	return s
}

func (s Selector) protocol() uint8 {
	if s.Protocol == 0 {
		return ProtoUDP
	}
	return s.Protocol
}

// Validate rejects selectors that would match too much or nothing sensible.
func (s Selector) Validate() error {
	switch {
	case !s.OrigDst.IsValid() && !s.ReplySrc.IsValid():
		return fmt.Errorf("conntrack selector %v: needs a service IP or an endpoint IP", s)
	case s.OrigDst.IsValid() && s.ReplySrc.IsValid() && s.OrigDst.Unmap().Is4() != s.ReplySrc.Unmap().Is4():
		return fmt.Errorf("conntrack selector %v: service IP and endpoint IP are of different families", s)
	case s.protocol() != ProtoUDP && s.protocol() != ProtoTCP:
		return fmt.Errorf("conntrack selector %v: protocol %d is neither UDP nor TCP", s, s.Protocol)
	}
	return nil
}

// IPv6 reports the selector's address family.
func (s Selector) IPv6() bool {
	if s.OrigDst.IsValid() {
		return !s.OrigDst.Unmap().Is4()
	}
	return !s.ReplySrc.Unmap().Is4()
}

func (s Selector) String() string {
	proto := "udp"
	if s.protocol() == ProtoTCP {
		proto = "tcp syn-sent"
	}
	return fmt.Sprintf("{%s dst=%v dport=%d reply-src=%v}", proto, s.OrigDst, s.OrigDstPort, s.ReplySrc)
}

// Matches reports whether a flow is selected: it has the selector's protocol (for TCP,
// its SYN still unanswered) and every set field is equal.
func (s Selector) Matches(f Flow) bool {
	if f.Protocol != s.protocol() || (f.Protocol == ProtoTCP && f.TCPState != TCPSynSent) {
		return false
	}
	if s.OrigDst.IsValid() && s.OrigDst.Unmap() != f.OrigDst.Addr().Unmap() {
		return false
	}
	if s.OrigDstPort != 0 && s.OrigDstPort != f.OrigDst.Port() {
		return false
	}
	if s.ReplySrc.IsValid() && s.ReplySrc.Unmap() != f.ReplySrc.Addr().Unmap() {
		return false
	}
	return true
}

// Cleaner deletes conntrack entries.
type Cleaner interface {
	// Delete deletes every entry that any selector matches and returns how many it
	// deleted. Invalid selectors fail the whole call before anything is deleted.
	Delete(sels ...Selector) (int, error)
}

// ValidateAll checks every selector and joins the errors.
func ValidateAll(sels []Selector) error {
	var errs []error
	for _, s := range sels {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
