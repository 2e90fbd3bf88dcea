package doctor

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/nftext"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/probe"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/resolve"
)

// run applies one judge and returns "STATUS area: evidence | fix" lines.
func run(f func(c *checks)) []string {
	c := &checks{scope: "n1"}
	f(c)
	var out []string
	for _, ch := range c.out {
		out = append(out, string(ch.Status)+" "+ch.Area+": "+ch.Evidence+" | "+ch.Fix)
	}
	return out
}

func expect(t *testing.T, name string, got []string, want ...string) {
	t.Helper()
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: missing %q in\n%s", name, w, all)
		}
	}
}

func healthy() NodeFacts {
	return NodeFacts{
		Node: resolve.Node{Name: "n1", IP: netip.MustParseAddr("198.18.0.11"), Mode: "vxlan", PodCIDR: netip.MustParsePrefix("10.244.1.0/24")},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.bridge.bridge-nf-call-iptables": "1",
			"net.netfilter.nf_conntrack_count": "10", "net.netfilter.nf_conntrack_max": "1000"},
		Underlay:  &LinkFact{Name: "eth0", MTU: 1500, Up: true, Features: map[string]bool{"tx-udp_tnl-segmentation": true}},
		VXLAN:     &LinkFact{Name: "fjord.1", MTU: 1450, Up: true, Features: map[string]bool{"tx-checksum-ip-generic": true, "tx-generic-segmentation": true}},
		NodeJSON:  &nodestate.NodeNetwork{MTU: 1450, Mode: "vxlan"},
		HostVeths: []LinkFact{{Name: "fjabc", MTU: 1450, Up: true}},
		HasProxy:  true,
	}
}

func TestJudgeSysctlsMTUAndOffloads(t *testing.T) {
	f := healthy()
	got := run(func(c *checks) { judgeSysctls(c, f); judgeMTU(c, f); judgeOffloads(c, f) })
	for _, l := range got {
		if !strings.HasPrefix(l, "PASS") {
			t.Errorf("healthy node: %s", l)
		}
	}
	bad := healthy()
	bad.Sysctls["net.ipv4.ip_forward"] = "0"
	bad.Sysctls["net.ipv4.conf.fjord.1.rp_filter"] = "1"
	bad.Sysctls["net.netfilter.nf_conntrack_count"] = "950"
	bad.Underlay.MTU = 1400
	bad.VXLAN.Features["tx-generic-segmentation"] = false
	got = run(func(c *checks) { judgeSysctls(c, bad); judgeMTU(c, bad); judgeOffloads(c, bad) })
	expect(t, "broken node", got,
		`FAIL sysctl: net.ipv4.ip_forward = "0"`,
		"WARN sysctl: strict reverse-path filtering (rp_filter 1) on fjord.1",
		"FAIL conntrack: conntrack table 950 of 1000 entries (95%)",
		"FAIL mtu: fjord.1 MTU 1450 does not fit eth0's 1400 minus 50 bytes", "pods here need MTU ≤ 1350",
		"WARN offload: offloads off: fjord.1 tx-generic-segmentation")
	veth := healthy()
	veth.HostVeths = append(veth.HostVeths, LinkFact{Name: "fjold", MTU: 1500})
	expect(t, "old veth", run(func(c *checks) { judgeMTU(c, veth) }), "WARN mtu: pod veths with an MTU other than the node's pod MTU 1450: fjold 1500")
}

func TestJudgeFirewall(t *testing.T) {
	f := healthy()
	f.Foreign = nftext.Parse(`table inet fw { # handle 1
	chain forward { # handle 1
		type filter hook forward priority filter; policy drop;
		ip daddr 10.244.2.2 tcp dport 8080 drop # handle 2
		icmp type destination-unreachable icmp code frag-needed drop # handle 3
		ct state established accept # handle 4
	}
}`)
	expect(t, "firewall", run(func(c *checks) { judgeFirewall(c, f) }),
		"WARN firewall: table inet fw chain forward has policy drop",
		`WARN firewall: table inet fw chain forward drops traffic: "ip daddr 10.244.2.2 tcp dport 8080 drop" (handle 2)`,
		"nft delete rule inet fw forward handle 2",
		"FAIL firewall: table inet fw chain forward drops the ICMP path-MTU discovery needs")
	expect(t, "none", run(func(c *checks) { judgeFirewall(c, healthy()) }), "PASS firewall: no nftables tables but fjord's")
}

func TestJudgeAgentComparesTheKernelWithTheStore(t *testing.T) {
	n2 := resolve.Node{Name: "n2", IP: netip.MustParseAddr("198.18.0.12"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), VTEPMAC: "02:00:00:00:00:02", Ready: true}
	self := resolve.Node{Name: "n1", IP: netip.MustParseAddr("198.18.0.11"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Ready: true}
	f := healthy()
	f.Self = podnet.Self{Name: "n1", Mode: podnet.ModeVXLAN, NodeIP: self.IP, Underlay: "eth0",
		Device: podnet.Device{Name: "fjord.1", VNI: 1, Port: 8472, MTU: 1450, Local: self.IP, Underlay: "eth0", MAC: "02:00:00:00:00:01"}}
	cl := Cluster{Nodes: []resolve.Node{self, n2}, StoreUp: true}
	want, _ := podnet.Plan(podnet.Self{Name: "n1", Mode: podnet.ModeVXLAN, NodeIP: self.IP, PodCIDR: self.PodCIDR, Underlay: "eth0", Device: f.Self.Device},
		[]podnet.Peer{{Name: "n2", NodeIP: n2.IP, PodCIDR: n2.PodCIDR, VTEPMAC: n2.VTEPMAC}})
	in := want
	f.State = &in
	expect(t, "in sync", run(func(c *checks) { judgeAgent(c, f, cl) }), "PASS agent: kernel matches the store: 2 routes, 1 neighbours, 1 FDB entries for 1 peers", "PASS agent: lease alive")

	lagging := want
	lagging.Routes = lagging.Routes[:1] // the route to n2 is missing
	f.State = &lagging
	expect(t, "lagging", run(func(c *checks) { judgeAgent(c, f, cl) }), "FAIL agent: the kernel lags the store: missing or wrong route 10.244.2.0/24 via 10.244.2.0 dev fjord.1 onlink")

	dead := cl
	dead.Nodes = []resolve.Node{{Name: "n1", Ready: false, PodCIDR: self.PodCIDR}, n2}
	expect(t, "dead", run(func(c *checks) { judgeAgent(c, f, dead) }), "FAIL agent: the node's lease expired")
	expect(t, "store down", run(func(c *checks) { judgeAgent(c, f, Cluster{}) }), "WARN agent: store unreachable")
}

func TestJudgeProxyConntrackAndServices(t *testing.T) {
	ip := netip.MustParseAddr("10.96.0.10")
	ep := servicemap.Endpoint{IP: netip.MustParseAddr("10.244.1.2"), Port: 8080, Ready: true}
	cl := Cluster{StoreUp: true, Services: []servicemap.ServicePort{
		{Namespace: "default", Name: "web", Protocol: "TCP", Port: 80, ClusterIPs: []netip.Addr{ip}, Endpoints: []servicemap.Endpoint{ep}},
		{Namespace: "default", Name: "empty", Protocol: "UDP", Port: 53, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.11")}},
	}}
	f := healthy()
	f.ServiceKeys = map[string]string{"10.96.0.10:80/tcp": "service-ips", "10.96.0.11:53/udp": "no-endpoint-services"}
	expect(t, "in sync", run(func(c *checks) { judgeProxy(c, f, cl) }), "PASS proxy: table ip fjord dispatches all 2 service ports")
	f.ServiceKeys = map[string]string{"10.96.0.10:80/tcp": "no-endpoint-services", "10.96.0.99:80/tcp": "service-ips"}
	expect(t, "lagging", run(func(c *checks) { judgeProxy(c, f, cl) }),
		"FAIL proxy: the service proxy lags the store: 10.96.0.10:80/tcp is in no-endpoint-services, the store says service-ips; 10.96.0.11:53/udp not programmed")
	f.HasProxy = false
	expect(t, "no proxy", run(func(c *checks) { judgeProxy(c, f, cl) }), "FAIL proxy: table ip fjord is missing")

	f.Conntrack = []CTFlow{
		{Proto: "tcp", Service: netip.AddrPortFrom(ip, 80), Endpoint: ep.AddrPort()},
		{Proto: "tcp", Service: netip.AddrPortFrom(ip, 80), Endpoint: netip.MustParseAddrPort("10.244.3.3:8080")},
	}
	expect(t, "stale", run(func(c *checks) { judgeConntrack(c, f, cl) }), "WARN conntrack: 1 conntrack entries still send traffic to endpoints their service no longer has: default/web:80/tcp → 10.244.3.3:8080")
	expect(t, "services", run(func(c *checks) { judgeServices(c, cl) }), "WARN services: Services without endpoints (connections are refused at once): default/empty:53/udp")
}

func TestJudgePeers(t *testing.T) {
	ok := probe.Result{Outcome: probe.Reply}
	lost := probe.Result{Outcome: probe.Lost}
	got := run(func(c *checks) {
		judgePeers(c, "n1", []PeerProbe{
			{Peer: "n2", Small: ok, Full: ok, Size: 1500, Overlay: &ok},
			{Peer: "n3", Small: lost, Size: 1500, Addr: netip.MustParseAddr("198.18.0.13")},
			{Peer: "n4", Small: ok, Full: lost, Size: 1500, Overlay: &ok},
			{Peer: "n5", Small: ok, Full: ok, Size: 1500, Overlay: &lost},
		})
	})
	expect(t, "peers", got,
		"FAIL peers: n3 (198.18.0.13) does not answer on the underlay",
		"FAIL peers: 1500-byte don't-fragment frames to n4 vanish while small ones pass: an MTU black hole | fjord mtu n1 n4",
		"FAIL peers: the overlay to n5 fails",
		"PASS peers: n2 answer")
}

func TestJudgeEtcdAndCPU(t *testing.T) {
	m := EtcdMetrics{HasLeader: true, LeaderChanges: 1, FsyncP99: 2 * time.Millisecond, FsyncCount: 100, DBSize: 1 << 20, Quota: 2 << 30}
	expect(t, "healthy etcd", run(func(c *checks) { judgeEtcd(c, "e", m, false) }), "PASS fsync: e: WAL fsync p99 2ms", "PASS leader", "PASS db")
	slow := m
	slow.FsyncP99, slow.LeaderChanges, slow.HasLeader, slow.DBSize = 40*time.Millisecond, 7, false, 0.97*(2<<30)
	expect(t, "slow etcd", run(func(c *checks) { judgeEtcd(c, "e", slow, false) }),
		"FAIL member: e: no leader", "WARN fsync: e: WAL fsync p99 40ms", "above etcd's guidance of 10ms", "WARN leader: e has seen 7 leader changes", "FAIL db")
	slow.FsyncP99 = 150 * time.Millisecond
	expect(t, "very slow etcd", run(func(c *checks) { judgeEtcd(c, "e", slow, false) }), "FAIL fsync: e: WAL fsync p99 150ms over 100 fsyncs, as long as a heartbeat interval")
	expect(t, "tmpfs", run(func(c *checks) { judgeEtcd(c, "e", slow, true) }), "PASS fsync: e: WAL on tmpfs")

	expect(t, "hog", run(func(c *checks) {
		judgeNodeCPU(c, "n3", []ProcUse{{PID: 9, Name: "hog", Percent: 97}, {PID: 1, Name: "agent", Percent: 2}}, time.Second)
	}), "WARN cpu: noisy neighbour: pid 9 (hog) used 97% of a CPU in n3's namespace")
	a := cpuSample{at: time.Unix(0, 0), stat: map[string]CPUTimes{"cpu": {User: 100, Idle: 800}, "cpu0": {User: 50, Idle: 400}}}
	b := cpuSample{at: time.Unix(1, 0), stat: map[string]CPUTimes{"cpu": {User: 150, Idle: 820, Steal: 30}, "cpu0": {User: 60, Idle: 420, SoftIRQ: 20}}}
	expect(t, "steal", run(func(c *checks) { judgeMachineCPU(c, a, b, 12) }), "WARN cpu: the hypervisor steals CPU", "steal 30.0%", "PSI some avg10) 12%")
}
