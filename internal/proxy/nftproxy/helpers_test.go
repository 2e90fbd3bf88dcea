package nftproxy

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// Test address ranges (RFC 5737/2544-style, never routed off the machine):
//
//	pods      10.244.0.0/16 (this node: 10.244.1.0/24)
//	services  10.96.0.0/16
//	nodes     198.18.0.0/24 (this node: 198.18.0.1)
//	external  198.18.0.100-198.18.0.199 (external IPs), 198.18.0.200+ (LB IPs)
//	clients   203.0.113.0/24 (outside the cluster)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const nodeName = "node-a"

var (
	nodeIP      = netip.MustParseAddr("198.18.0.1")
	clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func testConfig(clock *fakeClock) Config {
	return Config{
		NodeIPs:     []netip.Addr{nodeIP},
		ClusterCIDR: clusterCIDR,
		HashSeed:    0x5eed,
		Now:         clock.Now,
		// The userspace proxy's range; the tests' lc services use ports in it.
		UserspacePorts: [2]uint16{40000, 40999},
	}
}

func newTestProxier(t testing.TB, cfg Config) (*Proxier, *knftables.Fake) {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p, err := New(fake, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, fake
}

// svcPort builds a ServicePort with endpoints "ip:port@node" ("@node" may
// be left out; node-a is local).
func svcPort(ns, name, portName string, proto servicemap.Protocol, clusterIP string, port uint16, eps ...string) servicemap.ServicePort {
	sp := servicemap.ServicePort{
		Namespace: ns, Name: name, PortName: portName, Protocol: proto,
		ClusterIPs: []netip.Addr{netip.MustParseAddr(clusterIP)}, Port: port, Scheduler: "random",
	}
	for _, e := range eps {
		sp.Endpoints = append(sp.Endpoints, endpoint(e))
	}
	return sp
}

func endpoint(s string) servicemap.Endpoint {
	addr, node, _ := strings.Cut(s, "@")
	if node == "" {
		node = "node-b"
	}
	ap := netip.MustParseAddrPort(addr)
	return servicemap.Endpoint{IP: ap.Addr(), Port: ap.Port(), NodeName: node, Ready: true, Serving: true, Weight: 1, IsLocal: node == nodeName}
}

func mapOf(ps ...servicemap.ServicePort) servicemap.Map {
	m := servicemap.Map{Ports: map[string]servicemap.ServicePort{}}
	for _, p := range ps {
		m.Ports[p.Key()] = p
	}
	return m
}

func mustSync(t testing.TB, p *Proxier, m servicemap.Map, full bool) Stats {
	t.Helper()
	st, err := p.Sync(m, full)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return st
}

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file (run go test -update and review the diff):\n%s", name, lineDiff(string(want), got))
	}
}

// lineDiff lists lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(got, "\n") {
		count[l]++
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			count[l]--
			continue
		}
		b.WriteString("- " + l + "\n")
	}
	wantCount := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		wantCount[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		if wantCount[l] > 0 {
			wantCount[l]--
			continue
		}
		b.WriteString("+ " + l + "\n")
	}
	return b.String()
}
