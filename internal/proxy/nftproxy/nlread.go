package nftproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A full sync must learn which chains, sets and maps the table holds and,
// per chain, how many rules it has and the last rule's comment. nft's JSON
// for that is tens of megabytes at 10,000 services and takes seconds to
// produce and parse; the kernel answers the same questions over netlink in
// a few streamed dumps, without formatting a single expression. This file
// reads those dumps and keeps only the summary.

// errDumpInterrupted means the ruleset changed during a dump.
var errDumpInterrupted = errors.New("nftproxy: netlink dump interrupted by a concurrent change")

// netlinkTable is what the netlink dumps say about the table.
type netlinkTable struct {
	found bool
	// use is the kernel's count of the table's chains, sets (anonymous ones
	// too) and other objects: it moves when anyone adds or deletes one.
	use        uint32
	chains     map[string]chainState
	containers map[string]bool // name -> is a map
	missing    []string        // chains of rulesOf that do not exist
}

// readTableNetlink reads the table's use count and named sets and maps,
// and then either (all) every chain with its rule summary, or only the rule
// summaries of the chains in rulesOf, without listing the others: at
// 30,000 services the chain dump alone is some 120,000 objects. It runs in
// the calling thread's network namespace. A dump that a concurrent change
// interrupts is retried a few times.
func readTableNetlink(family uint8, table string, all bool, rulesOf []string) (netlinkTable, error) {
	var err error
	for range 5 {
		var t netlinkTable
		t, err = readTableOnce(family, table, all, rulesOf)
		if !errors.Is(err, errDumpInterrupted) {
			return t, err
		}
	}
	return netlinkTable{}, err
}

func readTableOnce(family uint8, table string, all bool, rulesOf []string) (netlinkTable, error) {
	t := netlinkTable{chains: map[string]chainState{}, containers: map[string]bool{}}
	nl, err := dialNetfilter()
	if err != nil {
		return t, err
	}
	defer nl.close()

	tableAttr := nlAttr(1, cString(table)) // NFTA_{TABLE_NAME,CHAIN_TABLE,SET_TABLE,RULE_TABLE} are all 1
	err = nl.dump(unix.NFT_MSG_GETTABLE, family, nil, func(attrs []byte) {
		if name, ok := stringAttr(attrs, unix.NFTA_TABLE_NAME); ok && name == table {
			t.found, t.use = true, uint32Attr(attrs, unix.NFTA_TABLE_USE)
		}
	})
	if err != nil || !t.found {
		return t, err
	}
	if all {
		err = nl.dump(unix.NFT_MSG_GETCHAIN, family, tableAttr, func(attrs []byte) {
			if tb, _ := stringAttr(attrs, unix.NFTA_CHAIN_TABLE); tb != table {
				return
			}
			if name, ok := stringAttr(attrs, unix.NFTA_CHAIN_NAME); ok {
				t.chains[name] = chainState{}
			}
		})
		if err != nil {
			return t, err
		}
	}
	err = nl.dump(unix.NFT_MSG_GETSET, family, tableAttr, func(attrs []byte) {
		if tb, _ := stringAttr(attrs, unix.NFTA_SET_TABLE); tb != table {
			return
		}
		name, ok := stringAttr(attrs, unix.NFTA_SET_NAME)
		flags := uint32Attr(attrs, unix.NFTA_SET_FLAGS)
		if !ok || flags&unix.NFT_SET_ANONYMOUS != 0 {
			return // anonymous sets belong to rules, as in nft's listing
		}
		t.containers[name] = flags&unix.NFT_SET_MAP != 0
	})
	if err != nil {
		return t, err
	}
	if all {
		rulesOf = make([]string, 0, len(t.chains))
		for name := range t.chains {
			rulesOf = append(rulesOf, name)
		}
	}
	// One dump per chain: the kernel finds a named chain directly, while a
	// dump of the whole table walks it again from the start for every 32 KB
	// it returns, which grows with the square of the table.
	for _, chain := range rulesOf {
		var st chainState
		req := append(slices.Clone(tableAttr), nlAttr(unix.NFTA_RULE_CHAIN, cString(chain))...)
		err = nl.dump(unix.NFT_MSG_GETRULE, family, req, func(attrs []byte) {
			st.rules++
			st.fp = ""
			if c := ruleComment(attrBytes(attrs, unix.NFTA_RULE_USERDATA)); strings.HasPrefix(c, fingerprintPrefix) {
				st.fp = c
			}
		})
		if errors.Is(err, unix.ENOENT) {
			t.missing = append(t.missing, chain)
			continue
		}
		if err != nil {
			return t, fmt.Errorf("rules of chain %s: %w", chain, err)
		}
		t.chains[chain] = st
	}
	return t, nil
}

// tableUseNetlink reads the table's use count (0 when there is no table).
func tableUseNetlink(family uint8, table string) (uint32, error) {
	nl, err := dialNetfilter()
	if err != nil {
		return 0, err
	}
	defer nl.close()
	var use uint32
	err = nl.dump(unix.NFT_MSG_GETTABLE, family, nil, func(attrs []byte) {
		if name, ok := stringAttr(attrs, unix.NFTA_TABLE_NAME); ok && name == table {
			use = uint32Attr(attrs, unix.NFTA_TABLE_USE)
		}
	})
	return use, err
}

// countElementsNetlink counts the elements of a named set or map.
func countElementsNetlink(family uint8, table, set string) (int, error) {
	var n int
	var err error
	for range 5 {
		n, err = countElementsOnce(family, table, set)
		if !errors.Is(err, errDumpInterrupted) {
			break
		}
	}
	return n, err
}

func countElementsOnce(family uint8, table, set string) (int, error) {
	nl, err := dialNetfilter()
	if err != nil {
		return 0, err
	}
	defer nl.close()
	req := append(nlAttr(unix.NFTA_SET_ELEM_LIST_TABLE, cString(table)), nlAttr(unix.NFTA_SET_ELEM_LIST_SET, cString(set))...)
	n := 0
	err = nl.dump(unix.NFT_MSG_GETSETELEM, family, req, func(attrs []byte) {
		forEachAttr(attrBytes(attrs, unix.NFTA_SET_ELEM_LIST_ELEMENTS), func(typ uint16, _ []byte) {
			if typ == unix.NFTA_LIST_ELEM {
				n++
			}
		})
	})
	return n, err
}

// ruleComment extracts the comment from a rule's user data, a list of
// type-length-value records in which type 0 is the comment (NUL-terminated),
// as libnftnl writes it.
func ruleComment(udata []byte) string {
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

// netfilterConn is a netlink socket to nf_tables.
type netfilterConn struct {
	fd  int
	seq uint32
	buf []byte
}

func dialNetfilter() (*netfilterConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nftproxy: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nftproxy: netlink bind: %w", err)
	}
	return &netfilterConn{fd: fd, buf: make([]byte, 1<<18)}, nil
}

func (c *netfilterConn) close() { unix.Close(c.fd) }

// dump sends one nf_tables dump request and calls fn with the attributes of
// every object in the answer, as the answer streams in.
func (c *netfilterConn) dump(msg int, family uint8, attrs []byte, fn func(attrs []byte)) error {
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
		return fmt.Errorf("nftproxy: netlink send: %w", err)
	}
	interrupted := false
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("nftproxy: netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return fmt.Errorf("nftproxy: netlink parse: %w", err)
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
					return errDumpInterrupted
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("nftproxy: netlink dump: %w", syscall.Errno(-errno))
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

// nlAttr encodes one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, value []byte) []byte {
	l := unix.SizeofNlAttr + len(value)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofNlAttr:], value)
	return b
}

func cString(s string) []byte { return append([]byte(s), 0) }

// forEachAttr calls fn for each attribute in b (nested-flag bits cleared).
func forEachAttr(b []byte, fn func(typ uint16, value []byte)) {
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		if l < unix.SizeofNlAttr || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.SizeofNlAttr:l])
		b = b[min((l+3)&^3, len(b)):]
	}
}

func attrBytes(b []byte, typ uint16) []byte {
	var out []byte
	forEachAttr(b, func(t uint16, v []byte) {
		if t == typ && out == nil {
			out = v
		}
	})
	return out
}

func stringAttr(b []byte, typ uint16) (string, bool) {
	v := attrBytes(b, typ)
	if v == nil {
		return "", false
	}
	return strings.TrimRight(string(v), "\x00"), true
}

// uint32Attr reads a big-endian (network order) u32 attribute, 0 if absent.
func uint32Attr(b []byte, typ uint16) uint32 {
	v := attrBytes(b, typ)
	if len(v) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// nlaTypeMask clears the nested and byte-order flags from an attribute type.
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
