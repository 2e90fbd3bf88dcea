package nfnl

import (
	"encoding/binary"
	"strconv"

	"golang.org/x/sys/unix"
)

// Netfilter's verdict codes (linux/netfilter.h).
const (
	nfDrop   = 0
	nfAccept = 1
)

// Verdict is a verdict as nf_tables encodes it: a code (accept 1, drop 0,
// NFT_JUMP, NFT_GOTO, NFT_RETURN, NFT_CONTINUE) and, for jump and goto, the chain.
type Verdict struct {
	Code  int32
	Chain string
}

// String renders it as nft does.
func (v Verdict) String() string {
	switch v.Code {
	case nfAccept:
		return "accept"
	case nfDrop:
		return "drop"
	case 2: // NF_STOLEN
		return "stolen"
	case 3: // NF_QUEUE
		return "queue"
	case unix.NFT_CONTINUE:
		return "continue"
	case unix.NFT_BREAK:
		return "break"
	case unix.NFT_JUMP:
		return "jump " + v.Chain
	case unix.NFT_GOTO:
		return "goto " + v.Chain
	case unix.NFT_RETURN:
		return "return"
	}
	return "verdict " + strconv.Itoa(int(v.Code))
}

// Drops reports whether the verdict ends the packet (drop; reject is a rule that
// drops after sending an error).
func (v Verdict) Drops() bool { return v.Code == nfDrop }

// ParseVerdict reads a nested NFTA_DATA_VERDICT (or a bare verdict attribute list).
func ParseVerdict(b []byte) Verdict {
	var v Verdict
	ForEachAttr(b, func(typ uint16, val []byte) {
		switch typ {
		case unix.NFTA_VERDICT_CODE:
			if len(val) >= 4 {
				v.Code = int32(binary.BigEndian.Uint32(val))
			}
		case unix.NFTA_VERDICT_CHAIN:
			v.Chain = trimNUL(val)
		}
	})
	return v
}

// Element is one element of a set or map: its key as the kernel stores it
// (concatenations have each component padded to 4 bytes) and, for a verdict map, the
// verdict.
type Element struct {
	Key     []byte
	Verdict Verdict
}

// Elements dumps every element of a named set or map.
func (c *Conn) Elements(family uint8, table, set string, fn func(Element)) error {
	req := append(Attr(unix.NFTA_SET_ELEM_LIST_TABLE, CString(table)), Attr(unix.NFTA_SET_ELEM_LIST_SET, CString(set))...)
	return c.Dump(unix.NFT_MSG_GETSETELEM, family, req, func(attrs []byte) {
		ParseElements(attrs, fn)
	})
}

// ParseElements reads the elements of one NFT_MSG_NEWSETELEM message.
func ParseElements(attrs []byte, fn func(Element)) {
	ForEachAttr(AttrBytes(attrs, unix.NFTA_SET_ELEM_LIST_ELEMENTS), func(typ uint16, elem []byte) {
		if typ != unix.NFTA_LIST_ELEM {
			return
		}
		var e Element
		ForEachAttr(elem, func(typ uint16, val []byte) {
			switch typ {
			case unix.NFTA_SET_ELEM_KEY:
				e.Key = append([]byte(nil), AttrBytes(val, unix.NFTA_DATA_VALUE)...)
			case unix.NFTA_SET_ELEM_DATA:
				e.Verdict = ParseVerdict(AttrBytes(val, unix.NFTA_DATA_VERDICT))
			}
		})
		fn(e)
	})
}

func trimNUL(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
