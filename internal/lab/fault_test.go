package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidateFault(t *testing.T) {
	c := Default()
	c.Binary = "/bin/true"
	for _, tc := range []struct {
		spec FaultSpec
		want string // "" = valid; else a substring of the error
	}{
		{FaultSpec{Kind: FaultUnderlayMTU, Node: "n3", MTU: 1400}, ""},
		{FaultSpec{Kind: FaultUnderlayMTU, Node: "n3", MTU: 1500}, "MTU: 1500 is the lab's underlay MTU"},
		{FaultSpec{Kind: FaultUnderlayMTU, Node: "n3", MTU: 500}, "MTU: 500 is outside"},
		{FaultSpec{Kind: FaultUnderlayMTU, Node: "n4", MTU: 1400}, `NODE: "n4" is not a node`},
		{FaultSpec{Kind: FaultUnderlayMTU, Node: "x1", MTU: 1400}, `NODE: "x1"`},
		{FaultSpec{Kind: FaultICMPBlackhole, Node: "n1"}, ""},
		{FaultSpec{Kind: FaultNFTDrop, Node: "n2"}, "--dst: required"},
		{FaultSpec{Kind: FaultNFTDrop, Node: "n2", Dst: netip.MustParseAddr("10.244.2.2"), Proto: "icmp"}, "--proto"},
		{FaultSpec{Kind: FaultNFTDrop, Node: "n2", Dst: netip.MustParseAddr("10.244.2.2"), DstPort: 8080, Proto: "tcp"}, ""},
		{FaultSpec{Kind: FaultPartition, Node: "n2"}, ""},
		{FaultSpec{Kind: FaultCPUHog, Node: "n2", Workers: 0, Duration: time.Minute}, "--workers"},
		{FaultSpec{Kind: FaultCPUHog, Node: "n2", Workers: 1, Duration: 2 * time.Hour}, "--duration"},
		{FaultSpec{Kind: FaultDelay, Node: "n2", Delay: 20 * time.Millisecond}, ""},
		{FaultSpec{Kind: FaultDelay, Node: "n2"}, "DELAY"},
		{FaultSpec{Kind: "flood", Node: "n2"}, "unknown fault"},
	} {
		_, err := c.validateFault(tc.spec)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestNFTDropRule(t *testing.T) {
	a := netip.MustParseAddr("10.244.2.2")
	for _, tc := range []struct {
		spec FaultSpec
		want string
	}{
		{FaultSpec{Dst: a}, "ip daddr 10.244.2.2 drop"},
		{FaultSpec{Dst: a, DstPort: 8080, Proto: "tcp"}, "ip daddr 10.244.2.2 tcp dport 8080 drop"},
		{FaultSpec{Dst: a, DstPort: 53}, "ip daddr 10.244.2.2 meta l4proto { tcp, udp } th dport 53 drop"},
		{FaultSpec{Dst: a, Proto: "udp"}, "ip daddr 10.244.2.2 meta l4proto udp drop"},
		{FaultSpec{Dst: netip.MustParseAddr("fd00::1")}, "ip6 daddr fd00::1 drop"},
	} {
		if got := nftDropRule(tc.spec); got != tc.want {
			t.Errorf("nftDropRule(%+v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}
