package trace

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/fjord-net/fjord/internal/nftext"
)

// Flow identifies the probe's packets in every namespace: its protocol, addresses, and
// a port (TCP/UDP source port) or ICMP echo identifier chosen for this trace. A
// packet mark would not do: the kernel clears marks when a packet crosses into
// another namespace, while ports survive everything but NAT of the port itself.
type Flow struct {
	Proto string         `json:"proto"` // tcp, udp or icmp
	Src   netip.Addr     `json:"src"`
	Dst   netip.AddrPort `json:"dst"` // port 0 for icmp
	// ID is the TCP/UDP source port or the ICMP echo identifier.
	ID uint16 `json:"id"`
	// Size is the probe's IP packet size for icmp and udp (0 = small).
	Size int `json:"size,omitempty"`
}

func (f Flow) String() string {
	if f.Proto == "icmp" {
		return fmt.Sprintf("icmp %v → %v (echo id %d)", f.Src, f.Dst.Addr(), f.ID)
	}
	return fmt.Sprintf("%s %v:%d → %v", f.Proto, f.Src, f.ID, f.Dst)
}

// Packet is what an IPv4 header and the transport header after it say.
type Packet struct {
	Proto      string // tcp, udp, icmp or a number
	Src, Dst   netip.Addr
	SPort      uint16
	DPort      uint16
	ICMPType   uint8
	ICMPID     uint16
	TCPFlags   uint8
	Len        int     // total length from the IP header
	Inner      *Packet // the packet inside VXLAN, when this one is VXLAN
	Fragmented bool    // a non-first fragment (no transport header)
}

func (p Packet) String() string {
	switch p.Proto {
	case "tcp", "udp":
		s := fmt.Sprintf("%s %v:%d → %v:%d", p.Proto, p.Src, p.SPort, p.Dst, p.DPort)
		if p.Inner != nil {
			s += " [vxlan: " + p.Inner.String() + "]"
		}
		return s
	case "icmp":
		return fmt.Sprintf("icmp %v → %v type %d id %d", p.Src, p.Dst, p.ICMPType, p.ICMPID)
	}
	return fmt.Sprintf("%s %v → %v", p.Proto, p.Src, p.Dst)
}

var protoNames = map[byte]string{1: "icmp", 6: "tcp", 17: "udp"}

// ParseIPv4 reads an IPv4 header and the transport header after it (trans may be nil
// when the headers are contiguous in ip). vxlanPort (0 = none) makes UDP packets to
// that port be parsed inside as VXLAN.
func ParseIPv4(ip, trans []byte, vxlanPort uint16) (Packet, bool) {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return Packet{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 {
		return Packet{}, false
	}
	p := Packet{Src: netip.AddrFrom4([4]byte(ip[12:16])), Dst: netip.AddrFrom4([4]byte(ip[16:20])), Len: int(binary.BigEndian.Uint16(ip[2:]))}
	p.Proto = protoNames[ip[9]]
	if p.Proto == "" {
		p.Proto = fmt.Sprint(ip[9])
	}
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		p.Fragmented = true
		return p, true
	}
	if trans == nil {
		if len(ip) < ihl {
			return p, true
		}
		trans = ip[ihl:]
	}
	switch p.Proto {
	case "tcp", "udp":
		if len(trans) >= 4 {
			p.SPort, p.DPort = binary.BigEndian.Uint16(trans[0:]), binary.BigEndian.Uint16(trans[2:])
		}
		if p.Proto == "tcp" && len(trans) >= 14 {
			p.TCPFlags = trans[13]
		}
		// VXLAN: UDP 8 + VXLAN 8 + Ethernet 14, then the inner IPv4 packet.
		if p.Proto == "udp" && vxlanPort != 0 && p.DPort == vxlanPort && len(trans) >= 30+20 && trans[28] == 0x08 && trans[29] == 0x00 {
			if in, ok := ParseIPv4(trans[30:], nil, 0); ok {
				p.Inner = &in
			}
		}
	case "icmp":
		if len(trans) >= 8 {
			p.ICMPType, p.ICMPID = trans[0], binary.BigEndian.Uint16(trans[4:])
		}
	}
	return p, true
}

// Direction of a probe packet.
const (
	NotOurs = 0
	Forward = 1  // from the source toward the destination
	Reply   = -1 // the answer
)

// Match says whether p (or the packet inside it) belongs to the flow, and which way
// it goes. Addresses are not compared: NAT rewrites them on the way (DNAT to an
// endpoint, masquerade); the trace's port or echo id identifies the flow.
func (f Flow) Match(p Packet) int {
	if p.Inner != nil {
		if d := f.Match(*p.Inner); d != NotOurs {
			return d
		}
	}
	if p.Proto != f.Proto {
		return NotOurs
	}
	switch f.Proto {
	case "icmp":
		if p.ICMPID != f.ID {
			return NotOurs
		}
		if p.ICMPType == 0 {
			return Reply
		}
		if p.ICMPType == 8 {
			return Forward
		}
	case "tcp", "udp":
		if p.SPort == f.ID {
			return Forward
		}
		if p.DPort == f.ID {
			return Reply
		}
	}
	return NotOurs
}

// traceRules are the nft rules that set nftrace on the flow's packets, plain and
// inside VXLAN (matched with raw payload offsets past the UDP header: VXLAN 8 +
// Ethernet 14 = 22 bytes to the inner IPv4 header, 42 to its transport header). Each
// rule's comment says which way its packets go ("fwd" or "rep"): nftables' trace
// events carry only the first 20 bytes of a transport header, too few to see inside
// VXLAN, so the rule that marked a packet is what tells an encapsulated probe.
func (f Flow) traceRules(vxlanPort uint16) []string {
	fwd := ` meta nftrace set 1 comment "fwd"`
	rep := ` meta nftrace set 1 comment "rep"`
	var out []string
	switch f.Proto {
	case "icmp":
		out = append(out, fmt.Sprintf("icmp type echo-request icmp id %d", f.ID)+fwd, fmt.Sprintf("icmp type echo-reply icmp id %d", f.ID)+rep)
	default:
		out = append(out, fmt.Sprintf("meta l4proto %s th sport %d", f.Proto, f.ID)+fwd,
			fmt.Sprintf("meta l4proto %s th dport %d", f.Proto, f.ID)+rep)
	}
	if vxlanPort != 0 {
		vx := fmt.Sprintf("udp dport %d ", vxlanPort)
		switch f.Proto {
		case "icmp":
			out = append(out, vx+fmt.Sprintf("@ih,248,8 1 @ih,336,8 8 @ih,368,16 %d", f.ID)+fwd,
				vx+fmt.Sprintf("@ih,248,8 1 @ih,336,8 0 @ih,368,16 %d", f.ID)+rep)
		default:
			proto := map[string]int{"tcp": 6, "udp": 17}[f.Proto]
			out = append(out, vx+fmt.Sprintf("@ih,248,8 %d @ih,336,16 %d", proto, f.ID)+fwd,
				vx+fmt.Sprintf("@ih,248,8 %d @ih,352,16 %d", proto, f.ID)+rep)
		}
	}
	return out
}

// ruleDirections maps the handles of a trace table's rules (as `nft -a list table`
// prints them) to the direction their comment names.
func ruleDirections(listing string) map[uint64]int {
	out := map[uint64]int{}
	for _, c := range nftext.Parse(listing) {
		for _, r := range c.Rules {
			switch {
			case strings.HasSuffix(r.Text, `comment "fwd"`):
				out[r.Handle] = Forward
			case strings.HasSuffix(r.Text, `comment "rep"`):
				out[r.Handle] = Reply
			}
		}
	}
	return out
}
