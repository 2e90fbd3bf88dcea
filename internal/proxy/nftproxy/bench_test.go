package nftproxy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// benchMap has n ClusterIP services (every fourth with a NodePort) with 3
// endpoints each.
func benchMap(n int) servicemap.Map {
	m := servicemap.Map{Ports: make(map[string]servicemap.ServicePort, n)}
	for i := range n {
		cip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		sp := servicemap.ServicePort{
			Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), PortName: "http", Protocol: servicemap.TCP,
			ClusterIPs: []netip.Addr{cip}, Port: 80, Scheduler: "random",
		}
		if i%4 == 0 {
			sp.NodePort = uint16(30000 + i%2768)
		}
		for e := range 3 {
			j := i*3 + e
			sp.Endpoints = append(sp.Endpoints, servicemap.Endpoint{
				IP: netip.AddrFrom4([4]byte{10, 244, byte(j >> 8), byte(j)}), Port: 8080,
				Ready: true, Serving: true, Weight: 1, NodeName: "node-b",
			})
		}
		m.Ports[sp.Key()] = sp
	}
	return m
}

// discard is a knftables.Interface with an empty table that accepts every
// transaction without applying it: it measures the Proxier alone.
type discard struct{ ops int }

func (d *discard) NewTransaction() *knftables.Transaction {
	return knftables.NewFake(knftables.IPv4Family, TableName).NewTransaction()
}
func (d *discard) Run(_ context.Context, tx *knftables.Transaction) error {
	d.ops += tx.NumOperations()
	return nil
}
func (d *discard) Check(context.Context, *knftables.Transaction) error { return nil }
func (d *discard) ListAll(ctx context.Context) (map[string][]string, error) {
	return knftables.NewFake(knftables.IPv4Family, TableName).ListAll(ctx) // "no such table"
}
func (d *discard) List(context.Context, string) ([]string, error)               { return nil, nil }
func (d *discard) ListRules(context.Context, string) ([]*knftables.Rule, error) { return nil, nil }
func (d *discard) ListElements(context.Context, string, string) ([]*knftables.Element, error) {
	return nil, nil
}
func (d *discard) ListCounters(context.Context) ([]*knftables.Counter, error) { return nil, nil }

var benchSizes = []int{10, 1000, 10000, 30000}

// BenchmarkFullSync is the first sync of n services × 3 endpoints into an
// empty table: "generate" builds the transaction (the Proxier's cost),
// "fake" also applies it to knftables' fake.
func BenchmarkFullSync(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	for _, n := range benchSizes {
		m := benchMap(n)
		b.Run(fmt.Sprintf("generate/services=%d", n), func(b *testing.B) {
			ops := 0
			for b.Loop() {
				d := &discard{}
				p, _ := New(d, testConfig(clock))
				if _, err := p.Sync(m, true); err != nil {
					b.Fatal(err)
				}
				ops = d.ops
			}
			b.ReportMetric(float64(ops), "nft-ops")
		})
		b.Run(fmt.Sprintf("fake/services=%d", n), func(b *testing.B) {
			for b.Loop() {
				p, _ := newTestProxier(b, testConfig(clock))
				if _, err := p.Sync(m, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIncrementalSync changes one service's endpoints among n and
// syncs (Proxier cost only).
func BenchmarkIncrementalSync(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	for _, n := range benchSizes {
		m := benchMap(n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			d := &discard{}
			p, _ := New(d, testConfig(clock))
			if _, err := p.Sync(m, true); err != nil {
				b.Fatal(err)
			}
			key := m.Keys()[n/2]
			orig := m.Ports[key]
			alt := orig
			alt.Endpoints = append([]servicemap.Endpoint{}, orig.Endpoints[1:]...)
			ops, i := 0, 0
			for b.Loop() {
				if i%2 == 0 {
					m.Ports[key] = alt
				} else {
					m.Ports[key] = orig
				}
				i++
				before := d.ops
				if _, err := p.Sync(m, false); err != nil {
					b.Fatal(err)
				}
				ops = d.ops - before
			}
			m.Ports[key] = orig
			b.ReportMetric(float64(ops), "nft-ops")
		})
	}
}
