package nfnl

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestRuleComment(t *testing.T) {
	for _, tc := range []struct {
		udata []byte
		want  string
	}{
		{nil, ""},
		{[]byte{0, 7, 'f', 'p', ':', 'a', 'b', 'c', 0}, "fp:abc"},
		{[]byte{1, 2, 9, 9, 0, 3, 'x', 'y', 0}, "xy"}, // another record first
		{[]byte{0, 9, 'f', 'p'}, ""},                  // length past the end
	} {
		if got := RuleComment(tc.udata); got != tc.want {
			t.Errorf("RuleComment(%v) = %q, want %q", tc.udata, got, tc.want)
		}
	}
}

// FuzzNetlinkAttrs feeds arbitrary bytes to the parsers of kernel answers:
// they must never panic or read out of bounds.
func FuzzNetlinkAttrs(f *testing.F) {
	f.Add(append(Attr(unix.NFTA_RULE_CHAIN, CString("svc-x")), Attr(unix.NFTA_RULE_USERDATA, []byte{0, 4, 'f', 'p', ':', 0})...))
	f.Add(Attr(unix.NFTA_SET_FLAGS, []byte{0, 0, 0, 8}))
	f.Add([]byte{3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ForEachAttr(b, func(uint16, []byte) {})
		StringAttr(b, unix.NFTA_RULE_CHAIN)
		Uint32Attr(b, unix.NFTA_SET_FLAGS)
		RuleComment(AttrBytes(b, unix.NFTA_RULE_USERDATA))
		RuleComment(b)
	})
}
