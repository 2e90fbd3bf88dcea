package ipam_test

import (
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/ipam"
)

func mustPool(t *testing.T, prefix, gw string) ipam.Pool {
	t.Helper()
	p, err := ipam.NewPool(netip.MustParsePrefix(prefix), netip.MustParseAddr(gw))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPoolRejects(t *testing.T) {
	for _, tc := range []struct{ prefix, gw string }{
		{"10.0.0.1/24", "10.0.0.1"},   // host bits
		{"10.0.0.0/31", "10.0.0.0"},   // too small
		{"10.0.0.0/24", "10.0.1.1"},   // gateway outside
		{"10.0.0.0/24", "10.0.0.0"},   // gateway is the network address
		{"10.0.0.0/24", "10.0.0.255"}, // gateway is broadcast
	} {
		if _, err := ipam.NewPool(netip.MustParsePrefix(tc.prefix), netip.MustParseAddr(tc.gw)); err == nil {
			t.Errorf("NewPool(%s, %s) succeeded, want error", tc.prefix, tc.gw)
		}
	}
}

func TestUsable(t *testing.T) {
	p := mustPool(t, "10.244.1.0/24", "10.244.1.1")
	for ip, want := range map[string]bool{
		"10.244.1.0": false, "10.244.1.1": false, "10.244.1.255": false,
		"10.244.1.2": true, "10.244.1.254": true, "10.244.2.2": false,
	} {
		if got := p.Usable(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Usable(%s) = %v, want %v", ip, got, want)
		}
	}
	p6 := mustPool(t, "fd00:1::/120", "fd00:1::1")
	if !p6.Usable(netip.MustParseAddr("fd00:1::ff")) {
		t.Error("IPv6 has no broadcast address: fd00:1::ff must be usable")
	}
}

func TestNextRoundRobinAndWrap(t *testing.T) {
	p := mustPool(t, "10.0.0.0/29", "10.0.0.1") // usable: .2 .. .6
	none := map[netip.Addr]bool{}
	for _, tc := range []struct {
		last, want string
		taken      []string
	}{
		{"", "10.0.0.2", nil},
		{"10.0.0.2", "10.0.0.3", nil},
		{"10.0.0.6", "10.0.0.2", nil}, // wraps past broadcast, network, gateway
		{"10.0.0.3", "10.0.0.6", []string{"10.0.0.4", "10.0.0.5"}},
		{"10.0.0.5", "10.0.0.3", []string{"10.0.0.6", "10.0.0.2"}},
		{"192.168.0.9", "10.0.0.2", nil}, // last outside the pool: start over
	} {
		taken := none
		if tc.taken != nil {
			taken = map[netip.Addr]bool{}
			for _, s := range tc.taken {
				taken[netip.MustParseAddr(s)] = true
			}
		}
		var last netip.Addr
		if tc.last != "" {
			last = netip.MustParseAddr(tc.last)
		}
		got, ok := p.Next(last, taken)
		if !ok || got.String() != tc.want {
			t.Errorf("Next(%q, %v) = %v, %v; want %s", tc.last, tc.taken, got, ok, tc.want)
		}
	}
}

func TestNextFull(t *testing.T) {
	p := mustPool(t, "10.0.0.0/30", "10.0.0.1") // only .2
	if _, ok := p.Next(netip.Addr{}, map[netip.Addr]bool{netip.MustParseAddr("10.0.0.2"): true}); ok {
		t.Fatal("Next found an address in a full pool")
	}
}

func TestNextHugeIPv6PoolIsBounded(t *testing.T) {
	p := mustPool(t, "fd00::/64", "fd00::1")
	got, ok := p.Next(netip.MustParseAddr("fd00::ffff:ffff:ffff:ffff"), nil)
	if !ok || got != netip.MustParseAddr("fd00::2") {
		t.Fatalf("Next = %v %v, want fd00::2 after wrapping", got, ok)
	}
}
