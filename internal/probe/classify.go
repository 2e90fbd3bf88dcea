package probe

import "encoding/binary"

// ICMP types this package reads.
const (
	icmp4EchoReply   = 0
	icmp4Unreachable = 3
	icmp4FragNeeded  = 4 // code of type 3
	icmp6Unreachable = 1
	icmp6TooBig      = 2
	icmp6EchoReply   = 129
	icmp4Echo        = 8
	icmp6Echo        = 128
)

// Classify reads one ICMP message (without the outer IP header, as a raw ICMP socket
// returns it) and says whether it answers the echo request (id, seq), and how. An
// error message answers it when the original packet it quotes is that request.
func Classify(msg []byte, v6 bool, id, seq int) (Result, bool) {
	if len(msg) < 8 {
		return Result{}, false
	}
	typ, code := msg[0], msg[1]
	echoReply, unreach, tooBig := byte(icmp4EchoReply), byte(icmp4Unreachable), byte(255)
	if v6 {
		echoReply, unreach, tooBig = icmp6EchoReply, icmp6Unreachable, icmp6TooBig
	}
	switch typ {
	case echoReply:
		if int(binary.BigEndian.Uint16(msg[4:])) == id && int(binary.BigEndian.Uint16(msg[6:])) == seq {
			return Result{Outcome: Reply}, true
		}
	case unreach, tooBig:
		if !quotesEcho(msg[8:], v6, id, seq) {
			return Result{}, false
		}
		switch {
		case v6 && typ == tooBig:
			return Result{Outcome: FragNeeded, MTU: int(binary.BigEndian.Uint32(msg[4:]))}, true
		case !v6 && code == icmp4FragNeeded:
			return Result{Outcome: FragNeeded, MTU: int(binary.BigEndian.Uint16(msg[6:]))}, true
		default:
			return Result{Outcome: Unreachable, Code: int(code)}, true
		}
	}
	return Result{}, false
}

// quotesEcho reports whether an ICMP error's payload (the original IP header and at
// least 8 bytes after it) is our echo request.
func quotesEcho(orig []byte, v6 bool, id, seq int) bool {
	var l4 []byte
	want := byte(icmp4Echo)
	if v6 {
		if len(orig) < 40 || orig[0]>>4 != 6 || orig[6] != 58 {
			return false
		}
		l4, want = orig[40:], icmp6Echo
	} else {
		if len(orig) < 20 || orig[0]>>4 != 4 {
			return false
		}
		ihl := int(orig[0]&0x0f) * 4
		if ihl < 20 || len(orig) < ihl || orig[9] != 1 {
			return false
		}
		l4 = orig[ihl:]
	}
	return len(l4) >= 8 && l4[0] == want && int(binary.BigEndian.Uint16(l4[4:])) == id && int(binary.BigEndian.Uint16(l4[6:])) == seq
}
