package probe

import (
	"encoding/hex"
	"testing"
)

// Recorded on this kernel (raw ICMP socket, id 27102 = 0x69de, seq 77): an echo reply,
// and a router's "fragmentation needed" (next-hop MTU 1400 = 0x0578) quoting our
// 1500-byte DF echo request (cut after the quoted ICMP header).
const (
	recReply      = "000095d469de004d0000000000000000000000000000000000000000000000000000000000000000"
	recFragNeeded = "0304f78300000578450005dc0000400040011e0c0a0901020a09020208008dd469de004d0000000000000000"
)

func TestClassify(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// An ICMPv6 packet-too-big (MTU 1280) quoting echo request id 5 seq 6.
	v6TooBig := "02000000" + "00000500" + "6000000005b03a40" + "fd000000000000000000000000000001" + "fd000000000000000000000000000002" + "8000000000050006"
	// Host unreachable (code 1) quoting echo request id 0x69de seq 77.
	hostUnreach := "0301000000000000" + "450005dc0000400040011e0c0a0901020a090202" + "08008dd469de004d"
	for _, tc := range []struct {
		name    string
		msg     string
		v6      bool
		id, seq int
		ok      bool
		want    Result
	}{
		{"echo reply", recReply, false, 27102, 77, true, Result{Outcome: Reply}},
		{"echo reply to another probe", recReply, false, 27102, 78, false, Result{}},
		{"echo reply to another pinger", recReply, false, 1, 77, false, Result{}},
		{"frag needed", recFragNeeded, false, 27102, 77, true, Result{Outcome: FragNeeded, MTU: 1400}},
		{"frag needed for someone else's probe", recFragNeeded, false, 27103, 77, false, Result{}},
		{"host unreachable", hostUnreach, false, 27102, 77, true, Result{Outcome: Unreachable, Code: 1}},
		{"v6 packet too big", v6TooBig, true, 5, 6, true, Result{Outcome: FragNeeded, MTU: 1280}},
		{"v4 message read as v6", recFragNeeded, true, 27102, 77, false, Result{}},
		{"truncated quote", recFragNeeded[:40], false, 27102, 77, false, Result{}},
		{"too short", "0000", false, 0, 0, false, Result{}},
		{"echo request (ours, looped back)", "08008dd469de004d", false, 27102, 77, false, Result{}},
	} {
		got, ok := Classify(h(tc.msg), tc.v6, tc.id, tc.seq)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzClassify: whatever arrives on the socket, Classify never panics.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{3, 4, 0, 0, 0, 0, 5, 0x78, 0x45})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 5, 0, 0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		Classify(b, false, 1, 1)
		Classify(b, true, 1, 1)
	})
}
