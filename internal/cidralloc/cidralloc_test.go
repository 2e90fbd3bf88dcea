package cidralloc

import (
	"net/netip"
	"testing"
)

func collect(pool string, bits, n int) []string {
	var out []string
	for p := range Subnets(netip.MustParsePrefix(pool), bits) {
		out = append(out, p.String())
		if len(out) == n {
			break
		}
	}
	return out
}

func TestSubnets(t *testing.T) {
	for _, tc := range []struct {
		pool string
		bits int
		want []string
	}{
		{"10.244.0.0/16", 24, []string{"10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"}},
		{"10.244.0.0/23", 24, []string{"10.244.0.0/24", "10.244.1.0/24"}},
		{"10.0.0.0/8", 25, []string{"10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/25"}},
		{"255.255.254.0/23", 24, []string{"255.255.254.0/24", "255.255.255.0/24"}}, // ends at the top of the space
		{"fd00:10:244::/48", 64, []string{"fd00:10:244::/64", "fd00:10:244:1::/64", "fd00:10:244:2::/64"}},
		{"fd00::/16", 64, []string{"fd00::/64", "fd00:0:0:1::/64", "fd00:0:0:2::/64"}},
		{"fd00:10:244::/56", 57, []string{"fd00:10:244::/57", "fd00:10:244:80::/57"}},
		{"fd00::/8", 120, []string{"fd00::/120", "fd00::100/120", "fd00::200/120"}},
	} {
		if got := collect(tc.pool, tc.bits, 3); len(got) != len(tc.want) || (len(got) > 0 && got[len(got)-1] != tc.want[len(tc.want)-1]) || got[0] != tc.want[0] {
			t.Errorf("Subnets(%s, /%d) = %v, want %v", tc.pool, tc.bits, got, tc.want)
		}
	}
}

// A /48 cut into /64s used to overflow a 64-bit step and hand out the same /64 again
// and again.
func TestIPv6SubnetsAreDistinct(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	n := 0
	for p := range Subnets(netip.MustParsePrefix("fd00:10:244::/48"), 64) {
		if seen[p] {
			t.Fatalf("%v handed out twice", p)
		}
		seen[p] = true
		n++
	}
	if n != 1<<16 {
		t.Fatalf("walked %d subnets, want 65536", n)
	}
}

func TestFirstFreeAndInPool(t *testing.T) {
	pool := netip.MustParsePrefix("fd00:10:244::/48")
	taken := map[netip.Prefix]bool{netip.MustParsePrefix("fd00:10:244::/64"): true, netip.MustParsePrefix("fd00:10:244:1::/64"): true}
	p, ok := FirstFree(pool, 64, func(p netip.Prefix) bool { return taken[p] })
	if !ok || p.String() != "fd00:10:244:2::/64" {
		t.Fatalf("FirstFree = %v %v", p, ok)
	}
	if _, ok := FirstFree(netip.MustParsePrefix("10.0.0.0/23"), 24, func(netip.Prefix) bool { return true }); ok {
		t.Fatal("a full pool has nothing free")
	}
	for _, tc := range []struct {
		p    string
		want bool
	}{
		{"fd00:10:244:5::/64", true}, {"fd00:10:244:5::/63", false}, {"fd00:10:245::/64", false},
		{"fd00:10:244:5::1/64", false}, {"10.244.0.0/24", false},
	} {
		if got := InPool(pool, 64, netip.MustParsePrefix(tc.p)); got != tc.want {
			t.Errorf("InPool(%s) = %v", tc.p, got)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		pool string
		bits int
		ok   bool
	}{
		{"10.244.0.0/16", 24, true}, {"10.244.0.0/16", 16, false}, {"10.244.0.0/16", 31, false},
		{"fd00::/48", 64, true}, {"fd00::/48", 127, false},
	} {
		if err := Validate(netip.MustParsePrefix(tc.pool), tc.bits); (err == nil) != tc.ok {
			t.Errorf("Validate(%s, %d) = %v", tc.pool, tc.bits, err)
		}
	}
}
