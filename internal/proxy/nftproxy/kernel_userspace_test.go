package nftproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/l4"
	"github.com/fjord-net/fjord/internal/proxy/sched"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// nsDialer dials from inside a network namespace: each dial runs on a
// fresh thread that enters it (the socket keeps the namespace afterwards).
type nsDialer struct{ ns string }

func (d nsDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if err := enterNetns(d.ns); err != nil {
			ch <- result{nil, err}
			return
		}
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, address)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// TestKernelUserspaceRangeClosed runs the userspace L4 proxy behind the
// Proxier's rules in a "node" namespace, with a client in an "outside"
// namespace on the node's underlay. The lc services answer through their
// NodePorts and cluster IPs, but the proxy's own ports on the node's
// address reach nothing: only connections that a fjord redirect sent there
// are let in. Without UserspacePorts the same ports answer, which shows
// the test can see the difference.
func TestKernelUserspaceRangeClosed(t *testing.T) {
	node, outside := netnstest.New(t, "usn"), netnstest.New(t, "uso")
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ext0"}, PeerName: "ext1"}
	if err := node.H.LinkAdd(link); err != nil {
		t.Fatal(err)
	}
	peer, err := node.H.LinkByName("ext1")
	if err != nil {
		t.Fatal(err)
	}
	nsFile, err := os.Open(outside.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsFile.Close()
	if err := node.H.LinkSetNsFd(peer, int(nsFile.Fd())); err != nil {
		t.Fatal(err)
	}
	pods := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pods0"}, PeerName: "pods1"} // no dummy module here
	if err := node.H.LinkAdd(pods); err != nil {
		t.Fatal(err)
	}
	setup := func(h *netlink.Handle, name string, addrs ...string) {
		t.Helper()
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			nl, _ := netlink.ParseAddr(a)
			if err := h.AddrAdd(l, nl); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	setup(node.H, "ext0", "198.18.0.1/24")
	setup(node.H, "pods0", "10.244.1.5/32")
	setup(outside.H, "ext1", "198.18.0.2/24")
	_, svcNet, _ := net.ParseCIDR("10.96.0.0/16")
	if err := node.H.RouteAdd(&netlink.Route{LinkIndex: pods.Index, Dst: svcNet}); err != nil {
		t.Fatal(err)
	}

	const (
		tcpNodePort = "198.18.0.1:30013"
		udpNodePort = "198.18.0.1:30014"
		tcpDirect   = "198.18.0.1:61000"
		udpDirect   = "198.18.0.1:61001"
	)
	tcpSvc := svcPort("default", "db", "", servicemap.TCP, "10.96.0.13", 80, "10.244.1.5:8080@node-a")
	tcpSvc.Scheduler, tcpSvc.UserspacePort, tcpSvc.NodePort = "lc", 61000, 30013
	udpSvc := svcPort("default", "dns", "", servicemap.UDP, "10.96.0.14", 53, "10.244.1.5:5353@node-a")
	udpSvc.Scheduler, udpSvc.UserspacePort, udpSvc.NodePort = "lc", 61001, 30014
	m := mapOf(tcpSvc, udpSvc)
	cfg := testConfig(&fakeClock{t: time.Now()})
	cfg.UserspacePorts = [2]uint16{61000, 61999}

	proxy := l4.New(l4.Options{Dialer: nsDialer{node.Name}})
	defer proxy.Close()
	ep := func(s string) []sched.Endpoint {
		return []sched.Endpoint{{Addr: netip.MustParseAddrPort(s), Weight: 1}}
	}
	var proxier *Proxier
	inNetns(t, node.Name, func() {
		// The endpoint: TCP answers "tcp-ep" to a byte, UDP echoes "udp-ep:"
		// and the datagram.
		ln, err := net.Listen("tcp4", "10.244.1.5:8080")
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Read(make([]byte, 1)); err == nil {
						_, _ = io.WriteString(c, "tcp-ep")
					}
				}()
			}
		}()
		pc, err := net.ListenPacket("udp4", "10.244.1.5:5353")
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(append([]byte("udp-ep:"), buf[:n]...), from)
			}
		}()
		// The userspace listeners bind the wildcard address, as the agent's do.
		if err := proxy.Set([]l4.Service{
			{Key: "db", Protocol: l4.TCP, Scheduler: "lc", ListenAddr: netip.MustParseAddrPort("0.0.0.0:61000"), Endpoints: ep("10.244.1.5:8080")},
			{Key: "dns", Protocol: l4.UDP, Scheduler: "lc", ListenAddr: netip.MustParseAddrPort("0.0.0.0:61001"), Endpoints: ep("10.244.1.5:5353")},
		}); err != nil {
			t.Error(err)
			return
		}
		nft, err := NewInterface(knftables.IPv4Family)
		if err != nil {
			t.Errorf("NewInterface: %v", err)
			return
		}
		if proxier, err = New(nft, cfg); err != nil {
			t.Error(err)
			return
		}
		if _, err := proxier.Sync(m, false); err != nil {
			t.Errorf("sync: %v", err)
		}
		// From the node itself, the cluster IP is redirected to loopback.
		if got, err := askTCP("10.96.0.13:80"); err != nil || got != "tcp-ep" {
			t.Errorf("cluster IP from the node: %q, %v", got, err)
		}
	})
	if t.Failed() {
		return
	}

	inNetns(t, outside.Name, func() {
		if got, err := askTCP(tcpNodePort); err != nil || got != "tcp-ep" {
			t.Errorf("TCP NodePort from outside: %q, %v; want the service to answer", got, err)
		}
		if got, err := askUDP(udpNodePort); err != nil || got != "udp-ep:?" {
			t.Errorf("UDP NodePort from outside: %q, %v; want the service to answer", got, err)
		}
		if got, err := askTCP(tcpDirect); err == nil {
			t.Errorf("%s from outside answered %q; the userspace port must be closed to traffic fjord did not redirect", tcpDirect, got)
		}
		if got, err := askUDP(udpDirect); err == nil {
			t.Errorf("%s from outside answered %q; the userspace port must be closed to traffic fjord did not redirect", udpDirect, got)
		}
	})

	// Control: without the guard rule the same ports answer from outside.
	inNetns(t, node.Name, func() {
		nft, err := NewInterface(knftables.IPv4Family)
		if err != nil {
			t.Errorf("NewInterface: %v", err)
			return
		}
		open := cfg
		open.UserspacePorts = [2]uint16{}
		p, err := New(nft, open)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := p.Sync(m, true); err != nil {
			t.Errorf("sync: %v", err)
		}
	})
	inNetns(t, outside.Name, func() {
		if got, err := askTCP(tcpDirect); err != nil || got != "tcp-ep" {
			t.Errorf("control: %s without the guard rule: %q, %v; want an answer", tcpDirect, got, err)
		}
		if got, err := askUDP(udpDirect); err != nil || got != "udp-ep:?" {
			t.Errorf("control: %s without the guard rule: %q, %v; want an answer", udpDirect, got, err)
		}
	})
}

// askTCP connects, sends one byte and returns everything the server sends
// back. A dropped SYN fails after a second.
func askTCP(dst string) (string, error) {
	c, err := net.DialTimeout("tcp4", dst, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte{'?'}); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// askUDP sends "?" and returns the reply; no reply within a second is an
// error.
func askUDP(dst string) (string, error) {
	c, err := net.Dial("udp4", dst)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{'?'}); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return "", errors.Join(errors.New("no reply"), err)
	}
	return string(buf[:n]), nil
}
