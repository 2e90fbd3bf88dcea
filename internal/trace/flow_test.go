package trace

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAndMatch(t *testing.T) {
	f := Flow{Proto: "tcp", Src: netip.MustParseAddr("10.244.0.2"), Dst: netip.MustParseAddrPort("10.96.0.2:80"), ID: 40123}
	// A SYN 10.244.0.2:40123 -> 10.96.0.2:80 (IP header, then TCP).
	syn := mustHex(t, "45000034 0000 4000 4006 0000 0af40002 0a600002"+"9cbb 0050 00000001 00000000 8002 faf0 0000 0000")
	p, ok := ParseIPv4(syn, nil, 8472)
	if !ok || p.Proto != "tcp" || p.SPort != 40123 || p.DPort != 80 || p.TCPFlags != 0x02 || f.Match(p) != Forward {
		t.Fatalf("syn: %+v", p)
	}
	// The SYN-ACK from the endpoint after DNAT: dport is ours.
	synack := mustHex(t, "45000034 0000 4000 4006 0000 0af40202 0af40002"+"1f90 9cbb 00000001 00000002 8012 faf0 0000 0000")
	if p, _ := ParseIPv4(synack[:20], synack[20:], 8472); f.Match(p) != Reply || p.SPort != 8080 {
		t.Fatalf("syn-ack (separate headers): %+v", p)
	}
	// The SYN inside VXLAN between nodes: outer 198.18.0.11 -> .12 udp 8472.
	outer := mustHex(t, "45000066 0000 0000 4011 0000 c612000b c612000c"+"c35a 2118 0052 0000"+"08000000 00000100"+"0e134f5a740a 0e1345000000 0800")
	vx := append(outer, syn...)
	p, ok = ParseIPv4(vx, nil, 8472)
	if !ok || p.Inner == nil || p.Inner.SPort != 40123 || f.Match(p) != Forward {
		t.Fatalf("vxlan: %+v", p)
	}
	if p, _ := ParseIPv4(vx, nil, 0); p.Inner != nil || f.Match(p) != NotOurs {
		t.Fatalf("vxlan parsing must be asked for: %+v", p)
	}
	// Someone else's packet.
	other := mustHex(t, "45000034 0000 4000 4006 0000 0af40002 0a600002"+"9cbc 0050 00000001 00000000 8002 faf0 0000 0000")
	if p, _ := ParseIPv4(other, nil, 8472); f.Match(p) != NotOurs {
		t.Fatal("another port matched")
	}
	// ICMP echo and reply with id 777.
	fi := Flow{Proto: "icmp", ID: 777}
	echo := mustHex(t, "45000054 0000 4000 4001 0000 0af40002 0af40202"+"0800 0000 0309 0001")
	reply := mustHex(t, "45000054 0000 4000 4001 0000 0af40202 0af40002"+"0000 0000 0309 0001")
	if p, _ := ParseIPv4(echo, nil, 0); fi.Match(p) != Forward {
		t.Fatalf("echo %+v", p)
	}
	if p, _ := ParseIPv4(reply, nil, 0); fi.Match(p) != Reply {
		t.Fatalf("reply %+v", p)
	}
	// A later fragment has no ports.
	frag := mustHex(t, "45000034 0000 00b9 4006 0000 0af40002 0a600002"+"9cbb 0050")
	if p, _ := ParseIPv4(frag, nil, 0); !p.Fragmented || f.Match(p) != NotOurs {
		t.Fatalf("fragment %+v", p)
	}
	for _, bad := range [][]byte{nil, {0x45}, mustHex(t, "60000000000000000000000000000000000000000000")} {
		if _, ok := ParseIPv4(bad, nil, 0); ok {
			t.Errorf("%x parsed", bad)
		}
	}
}

func TestTraceRules(t *testing.T) {
	f := Flow{Proto: "tcp", ID: 40123}
	got := strings.Join(f.traceRules(8472), "\n")
	for _, want := range []string{
		`meta l4proto tcp th sport 40123 meta nftrace set 1 comment "fwd"`,
		`meta l4proto tcp th dport 40123 meta nftrace set 1 comment "rep"`,
		`udp dport 8472 @ih,248,8 6 @ih,336,16 40123 meta nftrace set 1 comment "fwd"`,
		`udp dport 8472 @ih,248,8 6 @ih,352,16 40123 meta nftrace set 1 comment "rep"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if got := (Flow{Proto: "icmp", ID: 9}).traceRules(0); len(got) != 2 || got[0] != `icmp type echo-request icmp id 9 meta nftrace set 1 comment "fwd"` {
		t.Errorf("%v", got)
	}
	// As nft lists the table back, with handles.
	dirs := ruleDirections(`table inet fjord_trace_1 { # handle 9
	chain pre { # handle 1
		type filter hook prerouting priority -350; policy accept;
		meta l4proto tcp th sport 40123 meta nftrace set 1 comment "fwd" # handle 2
		meta l4proto tcp th dport 40123 meta nftrace set 1 comment "rep" # handle 3
	}
}`)
	if dirs[2] != Forward || dirs[3] != Reply || len(dirs) != 2 {
		t.Errorf("%v", dirs)
	}
}

func FuzzParseIPv4(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _ := ParseIPv4(b, nil, 8472)
		_ = p.String()
		(Flow{Proto: "tcp", ID: 1}).Match(p)
	})
}
