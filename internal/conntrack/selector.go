package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
)

// ProtoUDP is IPPROTO_UDP.
const ProtoUDP = 17

// Flow is the part of one conntrack entry a Selector looks at.
type Flow struct {
	Protocol uint8
	OrigSrc  netip.AddrPort // the client
	OrigDst  netip.AddrPort // where the client sent: service IP:port, or node IP:nodePort
	ReplySrc netip.AddrPort // who answers after DNAT: the endpoint
}

func (f Flow) String() string {
	return fmt.Sprintf("proto=%d %s -> %s (reply from %s)", f.Protocol, f.OrigSrc, f.OrigDst, f.ReplySrc)
}

// Selector picks UDP entries. A zero field matches anything, but a selector must name at
// least one address: an empty one would match every UDP flow on the node.
type Selector struct {
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

// Validate rejects selectors that would match too much or nothing sensible.
func (s Selector) Validate() error {
	switch {
	case !s.OrigDst.IsValid() && !s.ReplySrc.IsValid():
		return fmt.Errorf("conntrack selector %v: needs a service IP or an endpoint IP", s)
	case s.OrigDst.IsValid() && s.ReplySrc.IsValid() && s.OrigDst.Unmap().Is4() != s.ReplySrc.Unmap().Is4():
		return fmt.Errorf("conntrack selector %v: service IP and endpoint IP are of different families", s)
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
	return fmt.Sprintf("{udp dst=%v dport=%d reply-src=%v}", s.OrigDst, s.OrigDstPort, s.ReplySrc)
}

// Matches reports whether a flow is selected: it is UDP and every set field is equal.
func (s Selector) Matches(f Flow) bool {
	if f.Protocol != ProtoUDP {
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
	// DeleteUDP deletes every UDP entry that any selector matches and returns how many
	// it deleted. Invalid selectors fail the whole call before anything is deleted.
	DeleteUDP(sels ...Selector) (int, error)
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
