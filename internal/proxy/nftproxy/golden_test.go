package nftproxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// goldenHeader opens every golden ruleset.
const goldenHeader = `# Golden ruleset: knftables fake dump after one full sync.
# Test ranges: pods 10.244.0.0/16 (ClusterCIDR; this node's pods 10.244.1.0/24),
# services 10.96.0.0/16, nodes 198.18.0.0/24 (this node 198.18.0.1, NodeIPs),
# external IPs 198.18.0.100-199, load-balancer IPs 198.18.0.200-254.
# Endpoints "@node-a" are local. HashSeed 0x5eed.
`

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestGoldenRulesets(t *testing.T) {
	tests := []struct {
		name string
		note string
		cfg  func(*Config)
		m    func() servicemap.Map
	}{{
		name: "clusterip",
		note: "One ClusterIP service, two endpoints (one local), random scheduler.",
		m: func() servicemap.Map {
			return mapOf(svcPort("default", "web", "http", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080"))
		},
	}, {
		name: "multiport",
		note: "One service with three named ports: http/TCP and dns/UDP with endpoints, metrics/TCP without.",
		m: func() servicemap.Map {
			return mapOf(
				svcPort("default", "app", "http", servicemap.TCP, "10.96.0.11", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080"),
				svcPort("default", "app", "dns", servicemap.UDP, "10.96.0.11", 53, "10.244.1.5:5353@node-a", "10.244.2.7:5353"),
				svcPort("default", "app", "metrics", servicemap.TCP, "10.96.0.11", 9090),
			)
		},
	}, {
		name: "nodeport",
		note: "NodePort 30080 on node IP 198.18.0.1 (Cluster policy: external traffic is masqueraded).",
		m: func() servicemap.Map {
			sp := svcPort("default", "web", "", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080")
			sp.NodePort = 30080
			return mapOf(sp)
		},
	}, {
		name: "nodeport-all-local-addresses",
		note: "NodePort with no NodeIPs configured: every local address but 127.0.0.0/8 takes it (fib daddr type local).",
		cfg:  func(c *Config) { c.NodeIPs = nil },
		m: func() servicemap.Map {
			sp := svcPort("default", "web", "", servicemap.TCP, "10.96.0.10", 80, "10.244.2.7:8080")
			sp.NodePort = 30080
			return mapOf(sp)
		},
	}, {
		name: "external-lb",
		note: "External IP 198.18.0.100 and load-balancer IP 198.18.0.200 on a UDP port.",
		m: func() servicemap.Map {
			sp := svcPort("default", "game", "", servicemap.UDP, "10.96.0.12", 7777, "10.244.2.7:7777", "10.244.3.8:7777")
			sp.ExternalIPs = []netip.Addr{addr("198.18.0.100")}
			sp.LoadBalancerIPs = []netip.Addr{addr("198.18.0.200")}
			return mapOf(sp)
		},
	}, {
		name: "etp-local",
		note: "externalTrafficPolicy Local: web has a local endpoint (external traffic goes to it unmasqueraded; pods and the node short-circuit to all endpoints); nolocal has none (external traffic is dropped).",
		m: func() servicemap.Map {
			web := svcPort("default", "web", "", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080")
			web.NodePort = 30080
			web.LoadBalancerIPs = []netip.Addr{addr("198.18.0.200")}
			web.ExternalTrafficPolicyLocal = true
			nolocal := svcPort("default", "nolocal", "", servicemap.TCP, "10.96.0.13", 80, "10.244.2.9:8080")
			nolocal.NodePort = 30081
			nolocal.ExternalTrafficPolicyLocal = true
			return mapOf(web, nolocal)
		},
	}, {
		name: "itp-local",
		note: "internalTrafficPolicy Local: cluster IP traffic only to local endpoints; without one it is dropped.",
		m: func() servicemap.Map {
			a := svcPort("default", "cache", "", servicemap.TCP, "10.96.0.14", 6379, "10.244.1.6:6379@node-a", "10.244.2.6:6379")
			a.InternalTrafficPolicyLocal = true
			b := svcPort("default", "cache-remote", "", servicemap.TCP, "10.96.0.15", 6379, "10.244.2.8:6379")
			b.InternalTrafficPolicyLocal = true
			return mapOf(a, b)
		},
	}, {
		name: "affinity",
		note: "sessionAffinity ClientIP, timeout 600s: one dynamic set per endpoint, checked first by the service chain.",
		m: func() servicemap.Map {
			sp := svcPort("default", "sticky", "", servicemap.TCP, "10.96.0.16", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080")
			sp.SessionAffinity = servicemap.SessionAffinity{ClientIP: true, TimeoutSeconds: 600}
			return mapOf(sp)
		},
	}, {
		name: "schedulers",
		note: "Each kernel scheduler over the same endpoints (weights 3,1,1). MaglevTableSize is 13 here to keep the golden readable (default 251).",
		cfg:  func(c *Config) { c.MaglevTableSize = 13 },
		m: func() servicemap.Map {
			var ps []servicemap.ServicePort
			for i, s := range []string{"random", "rr", "wrr", "sh", "maglev"} {
				sp := svcPort("sched", s, "", servicemap.TCP, "10.96.1."+itoa(i+1), 80, "10.244.1.5:80@node-a", "10.244.2.7:80", "10.244.3.9:80")
				sp.Scheduler = s
				sp.Endpoints[0].Weight = 3
				ps = append(ps, sp)
			}
			return mapOf(ps...)
		},
	}, {
		name: "no-endpoints",
		note: "No endpoints: cluster IP, external IP and NodePort are rejected (TCP reset / ICMP port unreachable) via the no-endpoint maps.",
		m: func() servicemap.Map {
			sp := svcPort("default", "down", "", servicemap.TCP, "10.96.0.17", 80)
			sp.NodePort = 30082
			sp.ExternalIPs = []netip.Addr{addr("198.18.0.101")}
			return mapOf(sp)
		},
	}, {
		name: "userspace",
		note: "An lc service served by a userspace proxy on port 40000: redirected there instead of DNATed. Every golden has UserspacePorts 40000-40999: filter-input drops new connections to that range that no redirect sent there.",
		m: func() servicemap.Map {
			sp := svcPort("default", "db", "", servicemap.TCP, "10.96.0.18", 5432, "10.244.1.5:5432@node-a", "10.244.2.7:5432")
			sp.Scheduler = "lc"
			sp.UserspacePort = 40000
			sp.NodePort = 30083
			return mapOf(sp)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1700000000, 0)}
			cfg := testConfig(clock)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, fake := newTestProxier(t, cfg)
			mustSync(t, p, tt.m(), true)
			golden(t, tt.name, goldenHeader+"# "+tt.note+"\n"+fake.Dump())
			// The dump must load back into a fake unchanged.
			_, fake2 := newTestProxier(t, cfg)
			if err := fake2.ParseDump(stripComments(fake.Dump())); err != nil {
				t.Fatalf("ParseDump: %v", err)
			}
		})
	}
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
