package lab

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := Default()
	ok.Binary = "/usr/bin/fjord"
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"long name", func(c *Config) { c.Name = "muchtoolongname" }, "--name"},
		{"name with dash", func(c *Config) { c.Name = "a-b" }, "--name"},
		{"no nodes", func(c *Config) { c.Nodes = 0 }, "--nodes"},
		{"outside benchmark range", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.0.0.0/24") }, "--subnet"},
		{"private range", func(c *Config) { c.Subnet = netip.MustParsePrefix("192.168.1.0/24") }, "--subnet"},
		{"host bits", func(c *Config) { c.Subnet = netip.MustParsePrefix("198.18.0.5/24") }, "--subnet"},
		{"tiny subnet", func(c *Config) { c.Subnet = netip.MustParsePrefix("198.18.0.0/28") }, "--subnet"},
		{"mtu", func(c *Config) { c.UnderlayMTU = 100 }, "--underlay-mtu"},
		{"mode", func(c *Config) { c.Mode = "ipip" }, "--mode"},
		{"more zones than nodes", func(c *Config) { c.Kubernetes, c.Runtime, c.KubeBin, c.Zones = true, RuntimeContainerd, "/k", 4 }, "--zones"},
		{"zones without real kubelets", func(c *Config) { c.Zones = 2 }, "--zones"},
	}
	for _, tc := range cases {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: want an error naming %s, got %v", tc.name, tc.field, err)
		}
	}
}

func TestNamesStayWithinLimits(t *testing.T) {
	c := Default()
	c.Name = "abcdefghi" // the longest name allowed
	if len(c.HostLink()) > 15 {
		t.Fatalf("host link %q exceeds the 15-byte interface name limit", c.HostLink())
	}
	if got := c.NodeAddr(3).String(); got != "198.18.0.13" {
		t.Fatalf("node 3 address %s", got)
	}
	if got := c.HostAddr().String(); got != "198.18.0.1" {
		t.Fatalf("host address %s", got)
	}
}

func TestNodeZones(t *testing.T) {
	c := Default()
	if got := []string{c.NodeZone(1), c.NodeZone(2), c.NodeZone(3)}; strings.Join(got, ",") != "zone-1,zone-2,zone-3" {
		t.Errorf("one zone per node: %v", got)
	}
	c.Nodes, c.Zones = 6, 3
	var got []string
	for i := 1; i <= 6; i++ {
		got = append(got, c.NodeZone(i))
	}
	if strings.Join(got, ",") != "zone-1,zone-2,zone-3,zone-1,zone-2,zone-3" {
		t.Errorf("6 nodes in 3 zones: %v", got)
	}
}
