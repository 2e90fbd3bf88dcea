package trace

import (
	"encoding/binary"
	"strings"
	"testing"
)

// Lines as this kernel's /proc/kallsyms has them (with data and module symbols).
const kallsyms = `ffffffff81000000 T _stext
ffffffff81ea83b0 T is_skb_forwardable
ffffffff81ea8740 t __dev_forward_skb2
ffffffff81f00000 D some_data
ffffffff82055fc0 T ip_forward
ffffffff820934f0 T tcp_v4_rcv
ffffffffc0001000 t vxlan_xmit	[vxlan]
`

func TestKallsyms(t *testing.T) {
	s, err := ParseKallsyms(strings.NewReader(kallsyms))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[uint64]string{
		0xffffffff820934f0 + 0x2a1: "tcp_v4_rcv+0x2a1",
		0xffffffff81ea8740 + 0x10:  "__dev_forward_skb2+0x10",
		0xffffffff81f00010:         "__dev_forward_skb2+0x578d0", // data symbols are skipped
		0xffffffffc0001004:         "vxlan_xmit+0x4",
		0x1000:                     "",
	} {
		if got := s.Lookup(addr); got != want {
			t.Errorf("%#x: %q, want %q", addr, got, want)
		}
	}
	if s.Function(0xffffffff82055fc0+5) != "ip_forward" {
		t.Error(s.Function(0xffffffff82055fc0 + 5))
	}
	if _, err := ParseKallsyms(strings.NewReader("0000000000000000 T hidden\n")); err == nil {
		t.Fatal("hidden addresses must be reported")
	}
}

func TestParseDropEvent(t *testing.T) {
	b := make([]byte, eventSize)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], 3)
	ne.PutUint32(b[4:], 7)
	ne.PutUint64(b[8:], 0xffffffff820934f0)
	ne.PutUint32(b[16:], 4026532000)
	ne.PutUint64(b[24:], 0xffff888012345678)
	b[32] = 0x45
	e, err := ParseDropEvent(b)
	if err != nil || e.Reason != 3 || e.Ifindex != 7 || e.Location != 0xffffffff820934f0 || e.NetnsInum != 4026532000 || e.Packet[0] != 0x45 || len(e.Packet) != packetSize {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := ParseDropEvent(b[:100]); err == nil {
		t.Fatal("a short record must be refused")
	}
}
