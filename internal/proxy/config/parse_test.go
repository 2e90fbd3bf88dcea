package config

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixture(t *testing.T) {
	c, err := Parse(mustRead(t, "testdata/kube-proxy-config.yaml"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Mode != ModeIPVS || c.Scheduler != "rr" || c.SyncPeriod != 30*time.Second ||
		c.MinSyncPeriod != 0 || c.StrictARP || c.ExcludeCIDRs != nil {
		t.Fatalf("got %+v", c)
	}
}

func TestParseFullKubeadmStyle(t *testing.T) {
	c, err := Parse(mustRead(t, "testdata/full.yaml"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Mode != ModeIPVS || c.Scheduler != "maglev" || c.SyncPeriod != time.Minute ||
		c.MinSyncPeriod != 2*time.Second || !c.StrictARP {
		t.Fatalf("got %+v", c)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24")}; !slices.Equal(c.ExcludeCIDRs, want) {
		t.Errorf("ExcludeCIDRs = %v", c.ExcludeCIDRs)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/56")}
	if !slices.Equal(c.ClusterCIDR, want) {
		t.Errorf("ClusterCIDR = %v", c.ClusterCIDR)
	}
	if !c.FeatureGates["KubeProxyIPVS"] {
		t.Errorf("FeatureGates = %v", c.FeatureGates)
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		doc           string
		mode          Mode
		sched         string
		sync, minSync time.Duration
	}{
		{"", ModeIPTables, "random", 30 * time.Second, time.Second},
		{"mode: ipvs", ModeIPVS, "rr", 30 * time.Second, 0},
		{"mode: ipvs\nipvs: {syncPeriod: 0s, minSyncPeriod: 0s}", ModeIPVS, "rr", 30 * time.Second, 0},
		{"mode: ipvs\nipvs: {scheduler: wlc, syncPeriod: 10s, minSyncPeriod: 1s}", ModeIPVS, "wlc", 10 * time.Second, time.Second},
		{"mode: nftables", ModeNFTables, "random", 30 * time.Second, time.Second},
		{"mode: nftables\nnftables: {syncPeriod: 1m, minSyncPeriod: 5s}", ModeNFTables, "random", time.Minute, 5 * time.Second},
		{"mode: iptables\niptables: {syncPeriod: 20s}", ModeIPTables, "random", 20 * time.Second, time.Second},
	} {
		c, err := Parse([]byte(header + tc.doc))
		if err != nil {
			t.Errorf("%q: %v", tc.doc, err)
			continue
		}
		if c.Mode != tc.mode || c.Scheduler != tc.sched || c.SyncPeriod != tc.sync || c.MinSyncPeriod != tc.minSync {
			t.Errorf("%q: got mode=%s sched=%s sync=%s min=%s", tc.doc, c.Mode, c.Scheduler, c.SyncPeriod, c.MinSyncPeriod)
		}
	}
}

const header = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want string // the whole error message
	}{
		{"mode: ipvs\nipvs:\n  schedular: rr", "ipvs.schedular: unknown field"},
		{"Mode: ipvs", "Mode: unknown field"},
		{"ipvs:\n  scheduler: foo", `ipvs.scheduler: "foo" is not one of rr, wrr, lc, wlc, sh, random, maglev`},
		{"ipvs:\n  syncPeriod: -1s", "ipvs.syncPeriod: must be positive"},
		{"ipvs:\n  syncPeriod: 30", `ipvs.syncPeriod: must be a duration string such as "30s"`},
		{"ipvs:\n  syncPeriod: soon", `ipvs.syncPeriod: "soon" is not a duration such as "30s"`},
		{"ipvs:\n  minSyncPeriod: -1s", "ipvs.minSyncPeriod: must not be negative"},
		{"ipvs:\n  syncPeriod: 10s\n  minSyncPeriod: 1m", "ipvs.minSyncPeriod: 1m0s must not exceed syncPeriod 10s"},
		{"nftables:\n  syncPeriod: -5s", "nftables.syncPeriod: must be positive"},
		{"mode: userspace", `mode: "userspace" is not one of ipvs, nftables, iptables`},
		{"ipvs:\n  excludeCIDRs: [10.0.0.0/8, 10.1.2.3]", `ipvs.excludeCIDRs[1]: "10.1.2.3" is not a CIDR`},
		{"ipvs:\n  excludeCIDRs: 10.0.0.0/8", "ipvs.excludeCIDRs: must be a list"},
		{"ipvs:\n  strictARP: maybe", "ipvs.strictARP: must be true or false"},
		{"ipvs: rr", "ipvs: must be an object"},
		{"clusterCIDR: 10.0.0.0/33", `clusterCIDR: "10.0.0.0/33" is not a CIDR`},
		{"clusterCIDR: 10.0.0.0/8,10.1.0.0/16", `clusterCIDR: "10.0.0.0/8,10.1.0.0/16" must be one CIDR, or one IPv4 and one IPv6 CIDR`},
		{"nodePortAddresses: [primary, bogus]", `nodePortAddresses[1]: "bogus" is not a CIDR or one of primary, localhost, all`},
		{"oomScoreAdj: -1001", "oomScoreAdj: -1001 is not in -1000..1000"},
		{"udpIdleTimeout: 250ms", "udpIdleTimeout: unknown field"},
		{"detectLocal:\n  clusterCIDRs: []", "detectLocal.clusterCIDRs: unknown field"},
		{"iptables:\n  masqueradeBit: 32", "iptables.masqueradeBit: 32 is not in 0..31"},
		{"iptables:\n  masqueradeBit: 1.5", "iptables.masqueradeBit: 1.5 is not a 32-bit integer"},
		{"conntrack:\n  maxPerCore: -1", "conntrack.maxPerCore: must not be negative"},
		{"conntrack:\n  max: 5", "conntrack.max: unknown field"},
		{"featureGates:\n  Foo: yes please", "featureGates.Foo: must be true or false"},
		{"detectLocalMode: Magic", `detectLocalMode: "Magic" is not one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix`},
		{"bindAddress: localhost", `bindAddress: "localhost" is not an IP address`},
		{"metricsBindAddress: 127.0.0.1:port", `metricsBindAddress: "127.0.0.1:port" is not an IP:port address`},
		{"portRange: 100-50", `portRange: "100-50" is not a port range such as 30000-32767`},
		{"logging:\n  vmodule:\n  - filePattern: x\n    level: 2", "logging.vmodule[0].level: unknown field"},
		{"clientConnection:\n  qps: fast", "clientConnection.qps: must be a number"},
	} {
		_, err := Parse([]byte(header + tc.doc))
		if err == nil {
			t.Errorf("%q: accepted", tc.doc)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.doc, err, tc.want)
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%q: %T is not a *FieldError", tc.doc, err)
		}
	}
}

func TestParseRejectsDocument(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"", "empty configuration"},
		{"kind: KubeProxyConfiguration", "apiVersion:"},
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration", "kind:"},
		{"apiVersion: v1\nkind: KubeProxyConfiguration", "apiVersion:"},
		{header + "mode: ipvs\nmode: nftables", "not a valid YAML document"},
		{"[1, 2]", "must be a YAML mapping"},
		{"42", "must be a YAML mapping"},
		{header + "mode: [", "not a valid YAML document"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want error containing %q", tc.doc, err, tc.want)
		}
	}
}

func TestNodePortAddresses(t *testing.T) {
	pp := netip.MustParsePrefix
	for _, tc := range []struct {
		doc     string
		want    []netip.Prefix
		primary bool
	}{
		{"mode: ipvs", []netip.Prefix{pp("0.0.0.0/0"), pp("::/0")}, false},
		{"mode: nftables", nil, true},
		{"mode: nftables\nnodePortAddresses: [primary, localhost, 192.0.2.0/24]",
			[]netip.Prefix{pp("127.0.0.0/8"), pp("::1/128"), pp("192.0.2.0/24")}, true},
		{"nodePortAddresses: [all]", []netip.Prefix{pp("0.0.0.0/0"), pp("::/0")}, false},
	} {
		c, err := Parse([]byte(header + tc.doc))
		if err != nil {
			t.Errorf("%q: %v", tc.doc, err)
			continue
		}
		if !slices.Equal(c.NodePortAddresses, tc.want) || c.NodePortPrimary != tc.primary {
			t.Errorf("%q: got %v primary=%v", tc.doc, c.NodePortAddresses, c.NodePortPrimary)
		}
	}
}

func TestNotice(t *testing.T) {
	c, err := Parse([]byte(header + "mode: ipvs\nipvs: {scheduler: maglev}"))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Notice(true); n != "" {
		t.Errorf("Notice(true) = %q", n)
	}
	n := c.Notice(false)
	if !strings.Contains(n, "nftables") || !strings.Contains(n, `"maglev"`) || strings.Count(n, ".") != 1 || !strings.HasSuffix(n, ".") {
		t.Errorf("Notice(false) = %q", n)
	}
	c.Mode = ModeNFTables
	if n := c.Notice(false); n != "" {
		t.Errorf("nftables Notice(false) = %q", n)
	}
}
