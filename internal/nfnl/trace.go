package nfnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TraceType says why a trace event was sent.
type TraceType uint32

// The trace event types (NFT_TRACETYPE_*).
const (
	TracePolicy TraceType = unix.NFT_TRACETYPE_POLICY // the base chain's policy decided
	TraceReturn TraceType = unix.NFT_TRACETYPE_RETURN // the chain ended and returned
	TraceRule   TraceType = unix.NFT_TRACETYPE_RULE   // a rule matched and gave a verdict
)

// TraceEvent is one NFT_MSG_TRACE message: what `nft monitor trace` prints as one line.
type TraceEvent struct {
	ID         uint32 // the same for every event of one packet (per namespace)
	Type       TraceType
	Family     uint8 // table family (unix.NFPROTO_*)
	Table      string
	Chain      string
	RuleHandle uint64    // 0 when no rule (policy, return)
	Verdict    Verdict   // the rule's or policy's verdict
	Policy     uint32    // the base chain's policy, for TracePolicy
	IIF, OIF   uint32    // interface indexes (0 none)
	Mark       uint32    // the packet's mark
	NFProto    uint8     // the hook's protocol family
	Network    []byte    // the network header (IP), as far as the kernel copied it
	Transport  []byte    // the transport header
	Time       time.Time // when it was read
}

// ParseTrace reads one NFT_MSG_TRACE message (its attributes, after the nfgenmsg
// header carrying family).
func ParseTrace(family uint8, attrs []byte) (TraceEvent, error) {
	e := TraceEvent{Family: family}
	seen, verdict := false, false
	ForEachAttr(attrs, func(typ uint16, v []byte) {
		switch typ {
		case unix.NFTA_TRACE_TABLE:
			e.Table = trimNUL(v)
		case unix.NFTA_TRACE_CHAIN:
			e.Chain = trimNUL(v)
		case unix.NFTA_TRACE_RULE_HANDLE:
			if len(v) >= 8 {
				e.RuleHandle = binary.BigEndian.Uint64(v)
			}
		case unix.NFTA_TRACE_TYPE:
			e.Type = TraceType(be32(v))
		case unix.NFTA_TRACE_VERDICT:
			e.Verdict, verdict = ParseVerdict(v), true
		case unix.NFTA_TRACE_ID:
			e.ID, seen = be32(v), len(v) >= 4
		case unix.NFTA_TRACE_NETWORK_HEADER:
			e.Network = append([]byte(nil), v...)
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			e.Transport = append([]byte(nil), v...)
		case unix.NFTA_TRACE_IIF:
			e.IIF = be32(v)
		case unix.NFTA_TRACE_OIF:
			e.OIF = be32(v)
		case unix.NFTA_TRACE_MARK:
			e.Mark = be32(v)
		case unix.NFTA_TRACE_NFPROTO:
			e.NFProto = uint8(be32(v))
		case unix.NFTA_TRACE_POLICY:
			e.Policy = be32(v)
		}
	})
	if e.Type == TracePolicy && !verdict {
		e.Verdict.Code = int32(e.Policy)
	}
	if !seen || e.Type == 0 {
		return e, errors.New("nfnl: trace message without id or type")
	}
	return e, nil
}

// be32 reads a big-endian u32 attribute value (0 when too short).
func be32(v []byte) uint32 {
	if len(v) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// DialTrace opens a socket subscribed to the nf_tables trace group of the calling
// thread's namespace. Events arrive only for packets a rule marked with
// `meta nftrace set 1`.
func DialTrace() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfnl: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.NFNLGRP_NFTRACE - 1)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfnl: join the nftrace group: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	return &Conn{fd: fd, buf: make([]byte, 1<<18)}, nil
}

// ReadTrace returns the trace events that arrive within wait (at least one read is
// attempted). A full socket buffer is reported as an error: events were lost.
func (c *Conn) ReadTrace(wait time.Duration) ([]TraceEvent, error) {
	var out []TraceEvent
	deadline := time.Now().Add(wait)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms < 0 {
			ms = 0
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		r, _, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ENOBUFS) {
			return out, errors.New("nfnl: trace events were lost (socket buffer full)")
		}
		if err != nil {
			return out, err
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:r])
		if err != nil {
			continue
		}
		now := time.Now()
		for _, m := range msgs {
			if m.Header.Type != uint16(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE) || len(m.Data) < 4 {
				continue
			}
			if e, err := ParseTrace(m.Data[0], m.Data[4:]); err == nil {
				e.Time = now
				out = append(out, e)
			}
		}
	}
}
