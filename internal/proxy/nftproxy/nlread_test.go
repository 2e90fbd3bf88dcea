package nftproxy

import (
	"maps"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// inNetlinkProxier runs fn in the namespace with a Proxier configured as the
// agent's (real nft, Netlink on).
func inNetlinkProxier(t *testing.T, ns string, clock *fakeClock, fn func(*Proxier)) {
	t.Helper()
	inNetns(t, ns, func() {
		nft, err := NewInterface(knftables.IPv4Family)
		if err != nil {
			t.Errorf("NewInterface: %v", err)
			return
		}
		cfg := testConfig(clock)
		cfg.Netlink = true
		p, err := New(nft, cfg)
		if err != nil {
			t.Error(err)
			return
		}
		fn(p)
	})
}

// TestNetlinkReadMatchesNFT programs every kind of rule, then reads the
// table both ways: the netlink summary must equal what nft's JSON says.
func TestNetlinkReadMatchesNFT(t *testing.T) {
	ns := netnstest.New(t, "nlr")
	clock := &fakeClock{t: time.Now()}
	inNetlinkProxier(t, ns.Name, clock, func(p *Proxier) {
		if got, err := p.listKernel(t.Context()); err != nil || got.table {
			t.Errorf("before the first sync: table %v, err %v; want no table", got.table, err)
		}
		if _, err := p.Sync(kernelMap(), false); err != nil {
			t.Errorf("sync: %v", err)
			return
		}
		want, err := p.listKernelNFT(t.Context())
		if err != nil {
			t.Error(err)
			return
		}
		got, err := p.listKernel(t.Context())
		if err != nil {
			t.Errorf("netlink read: %v", err)
			return
		}
		if !got.table || !maps.Equal(got.chains, want.chains) || !maps.Equal(got.containers, want.containers) || !maps.Equal(got.elems, want.elems) {
			t.Errorf("netlink read differs from nft's:\nnetlink %+v\nnft     %+v", got, want)
		}
		for name, st := range want.chains {
			if st.rules > 0 && st.fp == "" && p.fixedChains[name] == nil {
				t.Errorf("chain %s has no fingerprint in nft's listing", name)
			}
		}
		if clean, err := p.auditKernel(); err != nil || !clean {
			t.Errorf("audit of an unchanged table: clean %v, err %v", clean, err)
		}
	})
}

// TestNetlinkResyncRepairsDrift runs the agent's configuration (Netlink on):
// a periodic full sync over a table someone changed must repair it, and
// one over an untouched table must only audit it and write nothing.
func TestNetlinkResyncRepairsDrift(t *testing.T) {
	ns := netnstest.New(t, "nld")
	clock := &fakeClock{t: time.Now()}
	m := kernelMap()
	drifts := []struct {
		name string
		cmd  []string
	}{
		{"flush table", []string{"nft", "flush", "table", "ip", TableName}},
		{"delete element", []string{"nft", "delete", "element", "ip", TableName, serviceIPsMap, "{ 10.96.0.10 . tcp . 80 }"}},
		{"flush service chain", nil}, // filled in below
		{"add a chain", []string{"nft", "add", "chain", "ip", TableName, "intruder"}},
		{"delete table", []string{"nft", "delete", "table", "ip", TableName}},
	}
	inNetlinkProxier(t, ns.Name, clock, func(p *Proxier) {
		if _, err := p.Sync(m, false); err != nil {
			t.Errorf("sync: %v", err)
			return
		}
		st, err := p.Sync(m, true)
		if err != nil || st.Operations != 0 || !st.Audited || st.Full {
			t.Errorf("resync of an untouched table: %+v, %v; want an audit and no operations", st, err)
		}
		// After FullReadPeriod a full sync reads the whole table again.
		clock.t = clock.t.Add(time.Hour)
		if st, err := p.Sync(m, true); err != nil || !st.Full || st.Audited || st.Operations != 0 {
			t.Errorf("resync after an hour: %+v, %v; want a full read and no operations", st, err)
		}
		var svcChain string
		for name := range p.chains {
			svcChain = name
			break
		}
		drifts[2].cmd = []string{"nft", "flush", "chain", "ip", TableName, svcChain}
		for _, d := range drifts {
			if out, err := ns.Run(t, d.cmd[0], d.cmd[1:]...); err != nil {
				t.Errorf("%s: %v\n%s", d.name, err, out)
				continue
			}
			st, err := p.Sync(m, true)
			if d.name == "add a chain" {
				// A chain the Proxier did not write is found, flushed and
				// deleted after the grace period, like any chain it no
				// longer needs.
				clock.Advance(2 * time.Second)
				if st.Full && st.ChainsFlushed == 1 && err == nil {
					st, err = p.Sync(m, false)
				}
				if err != nil || st.ChainsDeleted != 1 {
					t.Errorf("%s: %+v, %v; want it found and deleted", d.name, st, err)
				}
			} else if err != nil || st.Operations == 0 || !st.Full {
				t.Errorf("%s: resync %+v, %v; want a repair", d.name, st, err)
			}
			if st, err := p.Sync(m, true); err != nil || st.Operations != 0 {
				t.Errorf("%s: second resync %+v, %v; want nothing left to repair", d.name, st, err)
			}
		}
	})
}
