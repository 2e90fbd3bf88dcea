package conntrack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink is the kernel Cleaner: it talks ctnetlink in one network namespace.
type Netlink struct {
	h     *netlink.Handle
	owned bool
}

var _ Cleaner = (*Netlink)(nil)

// NewNetlink uses an existing handle (which must include NETLINK_NETFILTER, as
// netlink.NewHandleAt does by default); the caller keeps owning it.
func NewNetlink(h *netlink.Handle) *Netlink { return &Netlink{h: h} }

// Open returns a cleaner for the network namespace at nsPath ("" = the caller's own).
// Close it when done.
func Open(nsPath string) (*Netlink, error) {
	if nsPath == "" {
		h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
		if err != nil {
			return nil, fmt.Errorf("conntrack: netlink handle: %w", err)
		}
		return &Netlink{h: h, owned: true}, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("conntrack: open namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("conntrack: netlink handle in %s: %w", nsPath, err)
	}
	return &Netlink{h: h, owned: true}, nil
}

// Close releases a handle Open made.
func (n *Netlink) Close() {
	if n.owned {
		n.h.Close()
	}
}

// maxDumpRetries bounds the retries when the table changes during a dump.
const maxDumpRetries = 3

// Delete dumps the conntrack table once per address family in use and deletes every
// entry a selector matches.
func (n *Netlink) Delete(sels ...Selector) (int, error) {
	if err := ValidateAll(sels); err != nil {
		return 0, err
	}
	var v4, v6 filter
	for _, s := range sels {
		if s.IPv6() {
			v6 = append(v6, s)
		} else {
			v4 = append(v4, s)
		}
	}
	total := 0
	for _, fam := range []struct {
		f    filter
		inet netlink.InetFamily
	}{{v4, unix.AF_INET}, {v6, unix.AF_INET6}} {
		if len(fam.f) == 0 {
			continue
		}
		var err error
		for range maxDumpRetries {
			var c uint
			c, err = n.h.ConntrackDeleteFilters(netlink.ConntrackTable, fam.inet, fam.f)
			total += int(c)
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return total, fmt.Errorf("conntrack: delete entries: %w", err)
		}
	}
	return total, nil
}

// List returns the UDP and TCP entries of one family, for diagnostics and tests.
func (n *Netlink) List(ipv6 bool) ([]Flow, error) {
	fam := netlink.InetFamily(unix.AF_INET)
	if ipv6 {
		fam = unix.AF_INET6
	}
	flows, err := n.h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		return nil, fmt.Errorf("conntrack: list: %w", err)
	}
	var out []Flow
	for _, f := range flows {
		if fl := flowOf(f); fl.Protocol == ProtoUDP || fl.Protocol == ProtoTCP {
			out = append(out, fl)
		}
	}
	return out, nil
}

// filter adapts selectors to netlink's CustomConntrackFilter, so the kernel path and the
// fake share Selector.Matches.
type filter []Selector

func (f filter) MatchConntrackFlow(cf *netlink.ConntrackFlow) bool {
	fl := flowOf(cf)
	for _, s := range f {
		if s.Matches(fl) {
			return true
		}
	}
	return false
}

func flowOf(cf *netlink.ConntrackFlow) Flow {
	f := Flow{
		Protocol: cf.Forward.Protocol,
		OrigSrc:  addrPort(cf.Forward.SrcIP, cf.Forward.SrcPort),
		OrigDst:  addrPort(cf.Forward.DstIP, cf.Forward.DstPort),
		ReplySrc: addrPort(cf.Reverse.SrcIP, cf.Reverse.SrcPort),
	}
	if tcp, ok := cf.ProtoInfo.(*netlink.ProtoInfoTCP); ok {
		f.TCPState = tcp.State
	}
	return f
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
