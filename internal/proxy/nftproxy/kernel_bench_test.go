package nftproxy

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// BenchmarkKernelSync runs the Proxier (configured as the agent runs it,
// reading the table over netlink) against real nft in a fresh network
// namespace per size: "full" is the first sync of n services × 3 endpoints
// into an empty table, "restart" a new Proxier's full sync over the same
// table (a full read, no writes), "resync" the periodic full sync that
// follows (an audit), "one-change" an incremental sync after one service's
// endpoints change. Needs root.
func BenchmarkKernelSync(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		m := benchMap(n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ns := netnstest.New(b, "nftb")
			clock := &fakeClock{t: time.Unix(1700000000, 0)}
			var full, restart, resync, change time.Duration
			cfg := testConfig(clock)
			cfg.Netlink = true
			inNetnsB(b, ns.Name, func() {
				nft, err := NewInterface(knftables.IPv4Family)
				if err != nil {
					b.Error(err)
					return
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p, _ := New(nft, cfg)
					start := time.Now()
					if _, err := p.Sync(m, true); err != nil {
						b.Error(err)
						return
					}
					full += time.Since(start)
					p2, _ := New(nft, cfg)
					start = time.Now()
					if st, err := p2.Sync(m, true); err != nil || st.Operations != 0 {
						b.Errorf("restart: %+v %v", st, err)
						return
					}
					restart += time.Since(start)
					start = time.Now()
					if st, err := p2.Sync(m, true); err != nil || !st.Audited || st.Operations != 0 {
						b.Errorf("resync: %+v %v", st, err)
						return
					}
					resync += time.Since(start)
					key := m.Keys()[n/2]
					orig := m.Ports[key]
					alt := orig
					alt.Endpoints = orig.Endpoints[1:]
					m.Ports[key] = alt
					start = time.Now()
					if _, err := p2.Sync(m, false); err != nil {
						b.Error(err)
						return
					}
					change += time.Since(start)
					m.Ports[key] = orig
					// Empty the table for the next round.
					tx := nft.NewTransaction()
					tx.Delete(&knftables.Table{})
					if err := nft.Run(b.Context(), tx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(full.Milliseconds())/float64(b.N), "full-ms")
			b.ReportMetric(float64(restart.Milliseconds())/float64(b.N), "restart-ms")
			b.ReportMetric(float64(resync.Milliseconds())/float64(b.N), "resync-ms")
			b.ReportMetric(float64(change.Milliseconds())/float64(b.N), "one-change-ms")
		})
	}
}

// inNetnsB is inNetns for benchmarks.
func inNetnsB(b *testing.B, name string, fn func()) {
	b.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := enterNetns(name); err != nil {
			b.Error(err)
			return
		}
		fn()
	}()
	<-done
}
