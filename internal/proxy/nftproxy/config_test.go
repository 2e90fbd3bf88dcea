package nftproxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

func TestConfigValidation(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"family", func(c *Config) { c.Family = knftables.InetFamily }, `family "inet" is not ip or ip6`},
		{"mark", func(c *Config) { c.MasqueradeMark = 0x4001 }, "must be a single bit"},
		{"maglev size", func(c *Config) { c.MaglevTableSize = 250 }, "must be a prime"},
		{"cluster CIDR family", func(c *Config) { c.ClusterCIDR = netip.MustParsePrefix("fd00::/64") }, "is not an IPv4 prefix"},
		{"exclude CIDR", func(c *Config) { c.ExcludeCIDRs = []netip.Prefix{{}} }, "invalid prefix"},
	}
	for _, tt := range tests {
		cfg := testConfig(clock)
		tt.mod(&cfg)
		_, err := New(knftables.NewFake(knftables.IPv4Family, TableName), cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestNewInterfaceWithoutNft(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NewInterface(knftables.IPv4Family)
	if err == nil || !strings.Contains(err.Error(), "nft command was not found") || !strings.Contains(err.Error(), "apt install nftables") {
		t.Errorf("got %v, want a clear 'nft not found' error", err)
	}
}

func TestExcludeCIDRsAndOtherFamilies(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	cfg := testConfig(clock)
	cfg.ExcludeCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.200.0/24"), netip.MustParsePrefix("198.18.0.150/32")}
	cfg.NodeIPs = append(cfg.NodeIPs, addr("fd00::1"), addr("127.0.0.1"))
	p, fake := newTestProxier(t, cfg)
	excluded := svcPort("default", "legacy", "", servicemap.TCP, "10.96.200.5", 80, "10.244.2.7:80")
	ext := svcPort("default", "ext", "", servicemap.TCP, "10.96.0.5", 80, "10.244.2.8:80")
	ext.ExternalIPs = []netip.Addr{addr("198.18.0.150"), addr("198.18.0.151")}
	v6 := svcPort("default", "v6only", "", servicemap.TCP, "fd00:96::5", 80, "[fd00:244::5]:80")
	mustSync(t, p, mapOf(excluded, ext, v6), true)
	d := fake.Dump()
	for _, absent := range []string{"10.96.200.5", "198.18.0.150 ", "fd00", "127.0.0.1", "v6only"} {
		if strings.Contains(d, absent) {
			t.Errorf("table mentions %q:\n%s", absent, d)
		}
	}
	for _, present := range []string{"198.18.0.151 . tcp . 80", "10.96.0.5 . tcp . 80"} {
		if !strings.Contains(d, present) {
			t.Errorf("table lacks %q", present)
		}
	}
}

func TestConflictingServicesAreReported(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	a := svcPort("default", "a", "", servicemap.TCP, "10.96.0.1", 80, "10.244.2.1:80")
	a.ExternalIPs = []netip.Addr{addr("198.18.0.100")}
	b := svcPort("default", "b", "", servicemap.TCP, "10.96.0.2", 80, "10.244.2.2:80")
	b.ExternalIPs = []netip.Addr{addr("198.18.0.100")}
	st := mustSync(t, p, mapOf(a, b), false)
	if len(st.Conflicts) != 1 || st.Conflicts[0] != "service-ips 198.18.0.100 . tcp . 80" {
		t.Errorf("conflicts = %q", st.Conflicts)
	}
	e := fake.Table.Maps[serviceIPsMap].FindElement("198.18.0.100", "tcp", "80")
	if e == nil || !strings.Contains(e.Value[0], "default/a/") {
		t.Errorf("the service whose key sorts first should win: %v", e)
	}
	// When a goes away, b takes the address over.
	mustSync(t, p, mapOf(b), false)
	e = fake.Table.Maps[serviceIPsMap].FindElement("198.18.0.100", "tcp", "80")
	if e == nil || !strings.Contains(e.Value[0], "default/b/") {
		t.Errorf("b did not take over: %v", e)
	}
}

func ipv6Config(clock *fakeClock) Config {
	return Config{
		Family:      knftables.IPv6Family,
		NodeIPs:     []netip.Addr{addr("198.18.0.1"), addr("fd00:18::1")},
		ClusterCIDR: netip.MustParsePrefix("fd00:244::/56"),
		HashSeed:    0x5eed,
		Now:         clock.Now,
	}
}

func ipv6Map() servicemap.Map {
	sp := svcPort("default", "web", "", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a", "[fd00:244:1::5]:8080@node-a", "[fd00:244:2::7]:8080")
	sp.ClusterIPs = append(sp.ClusterIPs, addr("fd00:96::10"))
	sp.NodePort = 30080
	sp.SessionAffinity = servicemap.SessionAffinity{ClientIP: true, TimeoutSeconds: 60}
	return mapOf(sp)
}

func TestIPv6(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	fake := knftables.NewFake(knftables.IPv6Family, TableName)
	p, err := New(fake, ipv6Config(clock))
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, p, ipv6Map(), true)
	golden(t, "ipv6", "# Golden ruleset (family ip6) for a dual-stack service: only its IPv6 cluster IP,\n# endpoints and node IPs appear. Pods fd00:244::/56, services fd00:96::/112, node fd00:18::1.\n"+fake.Dump())
}
