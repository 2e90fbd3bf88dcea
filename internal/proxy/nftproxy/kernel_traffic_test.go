package nftproxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// TestKernelTraffic programs a fresh network namespace and sends real TCP
// connections through the rules, all inside the namespace: a "pod" address
// 10.244.1.9 (the client's source), endpoints 10.244.1.5 and 10.244.1.6 on
// a veth interface (both ends in the namespace), and a route for the
// service range 10.96.0.0/16.
func TestKernelTraffic(t *testing.T) {
	ns := netnstest.New(t, "nftt")
	dummy := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pods0"}, PeerName: "pods1"}
	if err := ns.H.LinkAdd(dummy); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.244.1.9/32", "10.244.1.5/32", "10.244.1.6/32", "198.18.0.1/24"} {
		nl, _ := netlink.ParseAddr(a)
		if err := ns.H.AddrAdd(dummy, nl); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.H.LinkSetUp(dummy); err != nil {
		t.Fatal(err)
	}
	_, svcNet, _ := net.ParseCIDR("10.96.0.0/16")
	if err := ns.H.RouteAdd(&netlink.Route{LinkIndex: dummy.Index, Dst: svcNet, Src: net.ParseIP("10.244.1.9")}); err != nil {
		t.Fatal(err)
	}

	clock := &fakeClock{t: time.Now()}
	web := svcPort("default", "web", "", servicemap.TCP, "10.96.0.10", 80, "10.244.1.5:8080@node-a")
	rr := svcPort("default", "rr", "", servicemap.TCP, "10.96.0.11", 80, "10.244.1.5:8080@node-a", "10.244.1.6:8080@node-a")
	rr.Scheduler = "rr"
	down := svcPort("default", "down", "", servicemap.TCP, "10.96.0.12", 80)
	us := svcPort("default", "us", "", servicemap.TCP, "10.96.0.13", 80, "10.244.1.6:8080@node-a")
	us.Scheduler, us.UserspacePort = "lc", 40013

	inNetns(t, ns.Name, func() {
		// Servers: after one byte from the client, each answers with its
		// own name and the client's address.
		serve := func(addr, name string) {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("listen %s: %v", addr, err)
				return
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						_ = c.SetDeadline(time.Now().Add(5 * time.Second))
						if _, err := c.Read(make([]byte, 1)); err != nil {
							return
						}
						_, _ = io.WriteString(c, name+" "+c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String())
					}()
				}
			}()
		}
		serve("10.244.1.5:8080", "ep5")
		serve("10.244.1.6:8080", "ep6")
		serve(":40013", "userspace")
		talk := func(c net.Conn) (string, error) {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write([]byte{'?'}); err != nil {
				return "", err
			}
			b, err := io.ReadAll(c)
			return string(b), err
		}
		ask := func(dst string) (string, error) {
			c, err := net.DialTimeout("tcp", dst, 2*time.Second)
			if err != nil {
				return "", err
			}
			defer c.Close()
			return talk(c)
		}

		nft, err := NewInterface(knftables.IPv4Family)
		if err != nil {
			t.Errorf("NewInterface: %v", err)
			return
		}
		p, err := New(nft, testConfig(clock))
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := p.Sync(mapOf(web, rr, down, us), false); err != nil {
			t.Errorf("sync: %v", err)
			return
		}
		if got, err := ask("10.96.0.10:80"); err != nil || got != "ep5 10.244.1.9" {
			t.Errorf("ClusterIP: got %q, %v; want the endpoint to see the pod source", got, err)
		}
		seen := map[string]bool{}
		for range 4 {
			got, err := ask("10.96.0.11:80")
			if err != nil {
				t.Errorf("rr: %v", err)
			}
			seen[got] = true
		}
		if !seen["ep5 10.244.1.9"] || !seen["ep6 10.244.1.9"] {
			t.Errorf("rr over 4 connections reached %v, want both endpoints", seen)
		}
		for _, dst := range []string{"10.96.0.12:80", "10.96.0.10:81"} {
			start := time.Now()
			_, err := ask(dst)
			if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
				t.Errorf("%s: got %v after %v, want connection refused at once", dst, err, time.Since(start))
			}
		}
		if got, err := ask("10.96.0.13:80"); err != nil || got[:9] != "userspace" {
			t.Errorf("userspace redirect: got %q, %v", got, err)
		}

		// An open connection survives a restart that rewrites nothing and
		// an update that moves the service to another endpoint: it sends
		// its first data only afterwards, through conntrack's NAT.
		held, err := net.DialTimeout("tcp", "10.96.0.10:80", 2*time.Second)
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		defer held.Close()
		p2, _ := New(nft, testConfig(clock))
		if st, err := p2.Sync(mapOf(web, rr, down, us), true); err != nil || st.Operations != 0 {
			t.Errorf("restart sync: %+v, %v", st, err)
		}
		web2 := web
		web2.Endpoints = []servicemap.Endpoint{endpoint("10.244.1.6:8080@node-a")}
		if _, err := p2.Sync(mapOf(web2, rr, down, us), false); err != nil {
			t.Errorf("update: %v", err)
		}
		if got, err := talk(held); err != nil || got != "ep5 10.244.1.9" {
			t.Errorf("held connection: got %q, %v", got, err)
		}
		if got, err := ask("10.96.0.10:80"); err != nil || got != "ep6 10.244.1.9" {
			t.Errorf("after the update: got %q, %v", got, err)
		}

		// The old endpoint chain is deleted once its grace period is over.
		clock.Advance(2 * time.Second)
		st, err := p2.Sync(mapOf(web2, rr, down, us), false)
		if err != nil || st.ChainsDeleted != 1 || st.DeleteRetried {
			t.Errorf("cleanup sync: %+v, %v", st, err)
		}
		// Removing everything leaves the fixed layout, then nothing stale.
		if _, err := p2.Sync(mapOf(), false); err != nil {
			t.Errorf("empty map: %v", err)
		}
		clock.Advance(2 * time.Second)
		if st, err := p2.Sync(mapOf(), false); err != nil || st.PendingDeletes != 0 || st.DeleteRetried {
			t.Errorf("final cleanup: %+v, %v", st, err)
		}
	})
	out, err := ns.Run(t, "nft", "list", "chains", "ip")
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"chain svc-", "chain ep-", "chain ext-", "chain loc-"} {
		if strings.Contains(out, prefix) {
			t.Errorf("service chains left after removing every service:\n%s", out)
		}
	}
}
