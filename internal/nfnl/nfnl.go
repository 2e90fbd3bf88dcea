// Package nfnl speaks nf_tables over a raw netlink socket: dumps of tables, chains,
// rules, sets and elements, attribute encoding and decoding, and the trace events
// `nft monitor trace` shows. The service proxy reads its table with it (a streamed
// dump keeps only what a resync compares), and `fjord trace` follows packets with it.
// It decodes only what its callers need; it is not a general nftables library.
package nfnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrDumpInterrupted means the ruleset changed during a dump.
var ErrDumpInterrupted = errors.New("nfnl: netlink dump interrupted by a concurrent change")

// RuleComment extracts the comment from a rule's user data, a list of
// type-length-value records in which type 0 is the comment (NUL-terminated),
// as libnftnl writes it.
func RuleComment(udata []byte) string {
	for len(udata) >= 2 {
		typ, l := udata[0], int(udata[1])
		if 2+l > len(udata) {
			return ""
		}
		if typ == 0 {
			return strings.TrimRight(string(udata[2:2+l]), "\x00")
		}
		udata = udata[2+l:]
	}
	return ""
}

// Conn is a netlink socket to nf_tables, in the network namespace of the thread
// that dialled it.
type Conn struct {
	fd  int
	seq uint32
	buf []byte
}

func Dial() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfnl: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfnl: netlink bind: %w", err)
	}
	return &Conn{fd: fd, buf: make([]byte, 1<<18)}, nil
}

func (c *Conn) Close() { unix.Close(c.fd) }

// Dump sends one nf_tables dump request and calls fn with the attributes of
// every object in the answer, as the answer streams in.
func (c *Conn) Dump(msg int, family uint8, attrs []byte, fn func(attrs []byte)) error {
	c.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+4, unix.NLMSG_HDRLEN+4+len(attrs))
	req = append(req, attrs...)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], uint16(unix.NFNL_SUBSYS_NFTABLES<<8|msg))
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], c.seq)
	req[unix.NLMSG_HDRLEN] = family
	req[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("nfnl: netlink send: %w", err)
	}
	interrupted := false
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("nfnl: netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return fmt.Errorf("nfnl: netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != c.seq {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("nfnl: netlink dump: %w", syscall.Errno(-errno))
					}
				}
				return nil
			default:
				if len(m.Data) >= 4 {
					fn(m.Data[4:]) // after the nfgenmsg header
				}
			}
		}
	}
}

// Attr encodes one netlink attribute, padded to 4 bytes.
func Attr(typ uint16, value []byte) []byte {
	l := unix.SizeofNlAttr + len(value)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofNlAttr:], value)
	return b
}

func CString(s string) []byte { return append([]byte(s), 0) }

// ForEachAttr calls fn for each attribute in b (nested-flag bits cleared).
func ForEachAttr(b []byte, fn func(typ uint16, value []byte)) {
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		if l < unix.SizeofNlAttr || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&NLATypeMask, b[unix.SizeofNlAttr:l])
		b = b[min((l+3)&^3, len(b)):]
	}
}

func AttrBytes(b []byte, typ uint16) []byte {
	var out []byte
	ForEachAttr(b, func(t uint16, v []byte) {
		if t == typ && out == nil {
			out = v
		}
	})
	return out
}

func StringAttr(b []byte, typ uint16) (string, bool) {
	v := AttrBytes(b, typ)
	if v == nil {
		return "", false
	}
	return strings.TrimRight(string(v), "\x00"), true
}

// Uint32Attr reads a big-endian (network order) u32 attribute, 0 if absent.
func Uint32Attr(b []byte, typ uint16) uint32 {
	v := AttrBytes(b, typ)
	if len(v) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// NLATypeMask clears the nested and byte-order flags from an attribute type.
const NLATypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
