package nftproxy

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// inNetns runs fn on an OS thread that has entered the named network
// namespace; nft processes started by fn (knftables execs nft) inherit it.
// The thread is never returned to the runtime, so it cannot leak the
// namespace into other goroutines.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	var failure string
	go func() {
		defer close(done)
		if err := enterNetns(name); err != nil {
			failure = err.Error()
			return
		}
		fn()
	}()
	<-done
	if failure != "" {
		t.Fatal(failure)
	}
}

// enterNetns locks the calling goroutine to its thread for good (the
// thread exits with the goroutine) and moves the thread into the named
// network namespace.
func enterNetns(name string) error {
	runtime.LockOSThread() // never unlocked
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	return nil
}

// kernelMap is a map that uses every kind of rule the Proxier writes.
func kernelMap() servicemap.Map {
	web := svcPort("default", "web", "http", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a", "10.244.2.7:8080")
	web.NodePort = 30080
	web.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.18.0.100")}
	web.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("198.18.0.200")}
	web.SessionAffinity = servicemap.SessionAffinity{ClientIP: true, TimeoutSeconds: 600}
	dns := svcPort("kube-system", "dns", "dns", servicemap.UDP, "10.96.0.53", 53, "10.244.1.9:53@node-a", "10.244.2.9:53")
	dns.Scheduler = "sh"
	sctp := svcPort("default", "sig", "", servicemap.SCTP, "10.96.0.20", 3868, "10.244.2.20:3868", "10.244.2.21:3868")
	sctp.Scheduler = "rr"
	mag := svcPort("default", "mag", "", servicemap.TCP, "10.96.0.30", 80, "10.244.1.30:80@node-a", "10.244.2.30:80", "10.244.2.31:80")
	mag.Scheduler = "maglev"
	wrr := svcPort("default", "wrr", "", servicemap.TCP, "10.96.0.40", 80, "10.244.1.40:80@node-a", "10.244.2.40:80")
	wrr.Scheduler = "wrr"
	wrr.Endpoints[0].Weight = 3
	local := svcPort("default", "local", "", servicemap.TCP, "10.96.0.50", 80, "10.244.1.50:80@node-a", "10.244.2.50:80")
	local.NodePort = 30050
	local.ExternalTrafficPolicyLocal = true
	lc := svcPort("default", "lc", "", servicemap.TCP, "10.96.0.60", 80, "10.244.2.60:80")
	lc.Scheduler = "lc"
	lc.UserspacePort = 40060
	empty := svcPort("default", "empty", "", servicemap.TCP, "10.96.0.70", 80)
	empty.NodePort = 30070
	return mapOf(web, dns, sctp, mag, wrr, local, lc, empty)
}

func TestKernelRuleset(t *testing.T) {
	ns := netnstest.New(t, "nft")
	clock := &fakeClock{t: time.Now()}
	m := kernelMap()
	inNetns(t, ns.Name, func() {
		nft, err := NewInterface(knftables.IPv4Family)
		if err != nil {
			t.Errorf("NewInterface: %v", err)
			return
		}
		cfg := testConfig(clock)
		cfg.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("10.97.0.0/16")}
		p, err := New(nft, cfg)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := p.Sync(m, false); err != nil {
			t.Errorf("first sync: %v", err)
			return
		}
		// A new Proxier over the same table (a restart) finds nothing to do.
		p2, _ := New(nft, cfg)
		st, err := p2.Sync(m, true)
		if err != nil {
			t.Errorf("sync after restart: %v", err)
			return
		}
		if st.Operations != 0 {
			t.Errorf("sync after restart wrote %d operations, want 0: %+v", st.Operations, st)
		}
	})
	out, err := ns.Run(t, "nft", "list", "table", "ip", TableName)
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, out)
	}
	for _, want := range []string{"numgen random mod 2", "jhash ip saddr mod 251 seed 0x5eed", "ip daddr { 10.96.0.0/15 } drop", "redirect to :40060", "update @aff-", "dnat to 10.244.1.5:8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q", want)
		}
	}
	t.Logf("%s", out)
}

func TestKernelRulesetIPv6(t *testing.T) {
	ns := netnstest.New(t, "nft6")
	clock := &fakeClock{t: time.Now()}
	inNetns(t, ns.Name, func() {
		nft, err := NewInterface(knftables.IPv6Family)
		if err != nil {
			t.Errorf("NewInterface: %v", err)
			return
		}
		p, _ := New(nft, ipv6Config(clock))
		if _, err := p.Sync(ipv6Map(), false); err != nil {
			t.Errorf("sync: %v", err)
			return
		}
		p2, _ := New(nft, ipv6Config(clock))
		if st, err := p2.Sync(ipv6Map(), true); err != nil || st.Operations != 0 {
			t.Errorf("sync after restart: %+v, %v", st, err)
		}
	})
	if out, err := ns.Run(t, "nft", "list", "table", "ip6", TableName); err != nil || !strings.Contains(out, "dnat to [fd00:244:2::7]:8080") {
		t.Errorf("nft list table ip6: %v\n%s", err, out)
	}
}
