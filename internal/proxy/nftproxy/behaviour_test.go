package nftproxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// behaviourMap: web (2 endpoints, NodePort 30080, external IP, LB IP),
// local (ETP Local, NodePort 30050), nolocal (ETP Local without a local
// endpoint, NodePort 30051), down (no endpoints, NodePort 30070), cache
// (ITP Local), sticky (ClientIP affinity), db (userspace lc).
func behaviourMap() servicemap.Map {
	web := svcPort("default", "web", "", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080")
	web.NodePort = 30080
	web.ExternalIPs = []netip.Addr{addr("198.18.0.100")}
	web.LoadBalancerIPs = []netip.Addr{addr("198.18.0.200")}
	local := svcPort("default", "local", "", servicemap.TCP, "10.96.0.50", 80, "10.244.1.50:80@node-a", "10.244.2.50:80")
	local.NodePort = 30050
	local.ExternalTrafficPolicyLocal = true
	nolocal := svcPort("default", "nolocal", "", servicemap.TCP, "10.96.0.51", 80, "10.244.2.51:80")
	nolocal.NodePort = 30051
	nolocal.ExternalTrafficPolicyLocal = true
	down := svcPort("default", "down", "", servicemap.UDP, "10.96.0.70", 53)
	down.NodePort = 30070
	cache := svcPort("default", "cache", "", servicemap.TCP, "10.96.0.80", 6379, "10.244.1.80:6379@node-a", "10.244.2.80:6379")
	cache.InternalTrafficPolicyLocal = true
	cacheRemote := svcPort("default", "cache-remote", "", servicemap.TCP, "10.96.0.81", 6379, "10.244.2.81:6379")
	cacheRemote.InternalTrafficPolicyLocal = true
	sticky := svcPort("default", "sticky", "", servicemap.TCP, "10.96.0.90", 80, "10.244.1.90:80@node-a", "10.244.2.90:80")
	sticky.SessionAffinity = servicemap.SessionAffinity{ClientIP: true, TimeoutSeconds: 60}
	db := svcPort("default", "db", "", servicemap.TCP, "10.96.0.60", 5432, "10.244.2.60:5432")
	db.Scheduler = "lc"
	db.UserspacePort = 40060
	return mapOf(web, local, nolocal, down, cache, cacheRemote, sticky, db)
}

func TestPacketPaths(t *testing.T) {
	const (
		pod       = "10.244.1.20:40000" // a pod on this node
		remotePod = "10.244.3.20:40000" // a pod on another node, routed here
		client    = "203.0.113.7:50000" // outside the cluster
		node      = "198.18.0.1:50000"  // this node's own address
	)
	tests := []struct {
		name string
		pkt  packet
		pick int
		want string
		cfg  func(*Config)
	}{
		{name: "pod to ClusterIP", pkt: tcp(pod, "10.96.0.10:80"), want: "accept dnat 10.244.1.5:8080"},
		{name: "pod to ClusterIP, other endpoint", pkt: tcp(pod, "10.96.0.10:80"), pick: 1, want: "accept dnat 10.244.2.7:8080"},
		{name: "remote pod to ClusterIP keeps its source", pkt: tcp(remotePod, "10.96.0.10:80"), pick: 1, want: "accept dnat 10.244.2.7:8080"},
		{name: "outside client to ClusterIP is masqueraded", pkt: tcp(client, "10.96.0.10:80"), pick: 1, want: "accept dnat 10.244.2.7:8080 masquerade"},
		// A node's own address is routed back by every node: it is kept, so the
		// endpoint sees the real client (the upstream ETP=Local NodePort test).
		{name: "node process from its node address to ClusterIP keeps its source", pkt: local(node, "10.96.0.10:80"), pick: 1, want: "accept dnat 10.244.2.7:8080"},
		{name: "hairpin: endpoint to its own service, picked itself", pkt: tcp("10.244.1.5:40000", "10.96.0.10:80"), pick: 0, want: "accept dnat 10.244.1.5:8080 masquerade"},
		{name: "hairpin: endpoint to its own service, picked another", pkt: tcp("10.244.1.5:40000", "10.96.0.10:80"), pick: 1, want: "accept dnat 10.244.2.7:8080"},
		{name: "MasqueradeAll masquerades pods", pkt: tcp(pod, "10.96.0.10:80"), want: "accept dnat 10.244.1.5:8080 masquerade",
			cfg: func(c *Config) { c.MasqueradeAll = true }},
		{name: "unknown port on a ClusterIP is rejected", pkt: tcp(pod, "10.96.0.10:81"), want: "reject"},
		{name: "NodePort from outside is masqueraded", pkt: tcp(client, "198.18.0.1:30080"), pick: 1, want: "accept dnat 10.244.2.7:8080 masquerade"},
		{name: "NodePort on a non-node address is not captured", pkt: tcp(client, "198.18.0.9:30080"), want: "accept"},
		{name: "external IP from outside", pkt: tcp(client, "198.18.0.100:80"), want: "accept dnat 10.244.1.5:8080 masquerade"},
		{name: "LB IP from outside", pkt: tcp(client, "198.18.0.200:80"), pick: 1, want: "accept dnat 10.244.2.7:8080 masquerade"},
		{name: "ETP Local NodePort from outside: local endpoint, source kept", pkt: tcp(client, "198.18.0.1:30050"), pick: 1, want: "accept dnat 10.244.1.50:80"},
		{name: "ETP Local NodePort from a pod: any endpoint", pkt: tcp(pod, "198.18.0.1:30050"), pick: 1, want: "accept dnat 10.244.2.50:80"},
		{name: "ETP Local NodePort from the node: any endpoint, node address kept", pkt: local(node, "198.18.0.1:30050"), pick: 1, want: "accept dnat 10.244.2.50:80"},
		{name: "node process from another local address to ClusterIP is masqueraded", pkt: local("10.96.0.10:40000", "10.96.0.10:80"), pick: 1, want: "accept dnat 10.244.2.7:8080 masquerade"},
		{name: "ETP Local without local endpoints: outside traffic dropped", pkt: tcp(client, "198.18.0.1:30051"), want: "drop"},
		{name: "ETP Local without local endpoints: pods still served", pkt: tcp(pod, "198.18.0.1:30051"), want: "accept dnat 10.244.2.51:80"},
		{name: "ETP Local without local endpoints: ClusterIP still served", pkt: tcp(client, "10.96.0.51:80"), want: "accept dnat 10.244.2.51:80 masquerade"},
		{name: "no endpoints: ClusterIP rejected", pkt: udp(pod, "10.96.0.70:53"), want: "reject"},
		{name: "no endpoints: NodePort rejected", pkt: udp(client, "198.18.0.1:30070"), want: "reject"},
		{name: "no endpoints: node process rejected", pkt: packet{src: netip.MustParseAddrPort(node), dst: netip.MustParseAddrPort("10.96.0.70:53"), proto: "udp", local: true}, want: "reject"},
		{name: "ITP Local: only the local endpoint", pkt: tcp(pod, "10.96.0.80:6379"), pick: 1, want: "accept dnat 10.244.1.80:6379"},
		{name: "ITP Local without a local endpoint: dropped", pkt: tcp(pod, "10.96.0.81:6379"), want: "drop"},
		{name: "userspace service is redirected", pkt: tcp(pod, "10.96.0.60:5432"), want: "accept redirect :40060"},
		{name: "userspace service from outside is redirected unmasqueraded", pkt: tcp(client, "10.96.0.60:5432"), want: "accept redirect :40060"},
		{name: "userspace port from outside, not redirected, is dropped", pkt: tcp(client, "198.18.0.1:40060"), want: "drop"},
		{name: "userspace port from a pod, not redirected, is dropped", pkt: tcp(pod, "198.18.0.1:40060"), want: "drop"},
		{name: "userspace range over UDP, not redirected, is dropped", pkt: udp(client, "198.18.0.1:40999"), want: "drop"},
		{name: "a port above the userspace range is left alone", pkt: tcp(client, "198.18.0.1:41000"), want: "accept"},
		{name: "without UserspacePorts the range is left alone", pkt: tcp(client, "198.18.0.1:40060"), want: "accept",
			cfg: func(c *Config) { c.UserspacePorts = [2]uint16{} }},
		{name: "other traffic is untouched", pkt: tcp(pod, "10.244.2.7:8080"), want: "accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1700000000, 0)}
			cfg := testConfig(clock)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, fake := newTestProxier(t, cfg)
			mustSync(t, p, behaviourMap(), true)
			tr := newTracer(t, fake)
			tr.pick = func(n int) int {
				if tt.pick >= n {
					t.Fatalf("pick %d of %d", tt.pick, n)
				}
				return tt.pick
			}
			got := tr.trace(tt.pkt)
			if got.String() != tt.want {
				t.Errorf("got %q, want %q\nchains: %v", got, tt.want, got.chains)
			}
		})
	}
}

func TestPacketPathAffinity(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	p, fake := newTestProxier(t, testConfig(clock))
	mustSync(t, p, behaviourMap(), true)
	tr := newTracer(t, fake)
	tr.pick = func(int) int { return 1 }
	first := tr.trace(tcp("10.244.1.20:40000", "10.96.0.90:80"))
	tr.pick = func(int) int { return 0 }
	second := tr.trace(tcp("10.244.1.20:40001", "10.96.0.90:80"))
	other := tr.trace(tcp("10.244.1.21:40000", "10.96.0.90:80"))
	if first.dnat.String() != "10.244.2.90:80" || second.dnat != first.dnat {
		t.Errorf("affinity: first %v, second %v", first, second)
	}
	if other.dnat.String() != "10.244.1.90:80" {
		t.Errorf("another client follows the affinity of the first: %v", other)
	}
}

func tcp(src, dst string) packet {
	return packet{src: netip.MustParseAddrPort(src), dst: netip.MustParseAddrPort(dst), proto: "tcp"}
}

func udp(src, dst string) packet {
	p := tcp(src, dst)
	p.proto = "udp"
	return p
}

func local(src, dst string) packet {
	p := tcp(src, dst)
	p.local = true
	return p
}

func TestPacketPathsServiceRangeAndNodePortSwitches(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		pkt  packet
		want string
	}{
		{"unallocated service IP is dropped", func(c *Config) { c.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")} },
			tcp("203.0.113.7:5000", "10.96.55.55:22"), "drop nat-held"},
		{"without ServiceCIDRs it is untouched", nil, tcp("203.0.113.7:5000", "10.96.55.55:22"), "accept"},
		{"allocated service IP, unknown port, still rejected", func(c *Config) { c.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")} },
			tcp("203.0.113.7:5000", "10.96.0.10:22"), "reject nat-held"},
		{"service still served with ServiceCIDRs", func(c *Config) { c.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")} },
			tcp("10.244.1.20:5000", "10.96.0.10:80"), "accept dnat 10.244.1.5:8080"},
		{"DisableNodePorts", func(c *Config) { c.DisableNodePorts = true }, tcp("203.0.113.7:5000", "198.18.0.1:30080"), "accept"},
		{"NodeIPs all excluded: no NodePorts", func(c *Config) { c.ExcludeCIDRs = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")} },
			tcp("203.0.113.7:5000", "198.18.0.1:30080"), "accept"},
		{"no-endpoint NodePort with NodePorts disabled is not rejected", func(c *Config) { c.DisableNodePorts = true },
			udp("203.0.113.7:5000", "198.18.0.1:30070"), "accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1700000000, 0)}
			cfg := testConfig(clock)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, fake := newTestProxier(t, cfg)
			mustSync(t, p, behaviourMap(), true)
			if got := newTracer(t, fake).trace(tt.pkt); got.String() != tt.want {
				t.Errorf("got %q, want %q (chains %v)", got, tt.want, got.chains)
			}
		})
	}
}
