// Package latency measures round-trip time between nodes and pods.
//
// The agent runs a Responder and a Prober on every node: every Interval the Prober
// sends one small UDP probe to each peer's Responder and exports what it saw as
// Prometheus metrics (what goldpinger and cilium-health give, without a DaemonSet of
// their own): an RTT histogram per peer, probes sent and lost, whether the peer
// answered last time, and the peer's clock offset (the probe carries timestamps the
// way NTP does, so doctor can report clock skew).
//
// `fjord latency` builds node×node and pod×pod matrices from ICMP echoes sent inside
// the lab's namespaces (internal/probe) with the statistics in stats.go, and measures a
// call chain through Services by TCP connect time, hop by hop.
package latency

import (
	"encoding/binary"
	"errors"
	"time"
)

// DefaultPort is the UDP port of the agent's responder.
const DefaultPort = 10264

// Wire format: 40 bytes, big-endian.
//
//	0  "FJLT"   magic
//	4  kind     1 = probe, 2 = reply
//	5  0,0,0    reserved
//	8  seq      u64
//	16 t1       sender's transmit time, unix ns
//	24 t2       responder's receive time (reply only)
//	32 t3       responder's transmit time (reply only)
const packetSize = 40

var magic = [4]byte{'F', 'J', 'L', 'T'}

const (
	kindProbe = 1
	kindReply = 2
)

// Packet is one probe or reply.
type Packet struct {
	Reply      bool
	Seq        uint64
	T1, T2, T3 int64
}

// Marshal encodes p.
func (p Packet) Marshal() []byte {
	b := make([]byte, packetSize)
	copy(b, magic[:])
	b[4] = kindProbe
	if p.Reply {
		b[4] = kindReply
	}
	binary.BigEndian.PutUint64(b[8:], p.Seq)
	binary.BigEndian.PutUint64(b[16:], uint64(p.T1))
	binary.BigEndian.PutUint64(b[24:], uint64(p.T2))
	binary.BigEndian.PutUint64(b[32:], uint64(p.T3))
	return b
}

// ErrNotAProbe is returned for datagrams that are not this protocol.
var ErrNotAProbe = errors.New("latency: not a fjord probe")

// Unmarshal decodes a datagram; anything but an exact, well-formed packet is refused.
func Unmarshal(b []byte) (Packet, error) {
	if len(b) != packetSize || [4]byte(b[0:4]) != magic || (b[4] != kindProbe && b[4] != kindReply) || b[5]|b[6]|b[7] != 0 {
		return Packet{}, ErrNotAProbe
	}
	return Packet{Reply: b[4] == kindReply, Seq: binary.BigEndian.Uint64(b[8:]),
		T1: int64(binary.BigEndian.Uint64(b[16:])), T2: int64(binary.BigEndian.Uint64(b[24:])), T3: int64(binary.BigEndian.Uint64(b[32:]))}, nil
}

// Timing computes the round trip (without the responder's own time) and the
// responder's clock offset from the four timestamps, as NTP does: t1 sent, t2
// received there, t3 sent back, t4 received here.
func Timing(t1, t2, t3, t4 int64) (rtt, offset time.Duration) {
	rtt = time.Duration((t4 - t1) - (t3 - t2))
	offset = time.Duration(((t2 - t1) + (t3 - t4)) / 2)
	return rtt, offset
}
