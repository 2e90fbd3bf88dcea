package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/nodestate"
)

func TestAddCheckDel(t *testing.T) {
	for _, ver := range SupportedVersions {
		t.Run(ver, func(t *testing.T) {
			e := newEnv(t)
			pod := newNetns(t, "pod")
			a := args("ctr-"+randHex(4), "eth0", pod.path(), e.conf(ver, nil))
			res, raw := e.add(ver, a)

			ip := assertResult(t, res, a, e.node)
			assertPodSide(t, pod, ip, e.node)
			assertHostSide(t, e, a, ip, e.node.MTU)
			udpExchange(t, e.host, pod, e.node.Gateway, ip)

			// CHECK with the cached result passes.
			check := args(a.ContainerID, a.IfName, a.Netns, e.conf(ver, map[string]any{"prevResult": json.RawMessage(raw)}))
			if _, err := e.run((*Plugin).Check, check); err != nil {
				t.Fatalf("CHECK: %v", err)
			}
			// A missing default route fails CHECK.
			ph := handleIn(t, pod)
			l, _ := ph.LinkByName("eth0")
			ph.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: e.node.Gateway.AsSlice()})
			_, err := e.run((*Plugin).Check, check)
			wantCode(t, err, ErrCheckFailed)

			// DEL removes everything, and is idempotent: twice, then with the netns gone.
			for i := range 2 {
				if _, err := e.run((*Plugin).Del, a); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
				e.assertClean()
			}
			if _, err := handleIn(t, pod).LinkByName("eth0"); err == nil {
				t.Error("pod interface survived DEL")
			}
			gone := args(a.ContainerID, a.IfName, "/var/run/netns/fjord-t-cni-gone-"+randHex(4), a.StdinData)
			if _, err := e.run((*Plugin).Del, gone); err != nil {
				t.Fatalf("DEL with missing netns: %v", err)
			}
			noNS := args(a.ContainerID, a.IfName, "", a.StdinData)
			if _, err := e.run((*Plugin).Del, noNS); err != nil {
				t.Fatalf("DEL without CNI_NETNS: %v", err)
			}
		})
	}
}

func assertResult(t *testing.T, res *current.Result, a *skel.CmdArgs, node nodestate.NodeNetwork) netip.Addr {
	t.Helper()
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != HostVethName(a.ContainerID, a.IfName) ||
		res.Interfaces[1].Name != a.IfName || res.Interfaces[1].Sandbox != a.Netns || res.Interfaces[1].Mac == "" {
		t.Fatalf("interfaces: %v", res.Interfaces)
	}
	if len(res.IPs) != 1 || res.IPs[0].Interface == nil || *res.IPs[0].Interface != 1 || !res.IPs[0].Gateway.Equal(node.Gateway.AsSlice()) {
		t.Fatalf("ips: %v", res.IPs)
	}
	ip, _ := netip.AddrFromSlice(res.IPs[0].Address.IP)
	ip = ip.Unmap()
	if ones, _ := res.IPs[0].Address.Mask.Size(); ones != 32 || !node.PodCIDR.Contains(ip) || ip == node.Gateway {
		t.Fatalf("address %v not a /32 inside %v", res.IPs[0].Address, node.PodCIDR)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" {
		t.Fatalf("routes: %v", res.Routes)
	}
	return ip
}

func assertPodSide(t *testing.T, pod testNS, ip netip.Addr, node nodestate.NodeNetwork) {
	t.Helper()
	h := handleIn(t, pod)
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().MTU != node.MTU || l.Type() != "veth" {
		t.Fatalf("pod link: type %s MTU %d", l.Type(), l.Attrs().MTU)
	}
	addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
	if len(addrs) != 1 || prefixOf(addrs[0].IPNet) != netip.PrefixFrom(ip, 32) {
		t.Fatalf("pod addresses: %v", addrs)
	}
	routes, _ := h.RouteList(l, netlink.FAMILY_V4)
	att := attachment{Gateway: node.Gateway}
	for _, want := range podRoutes(l.Attrs().Index, att) {
		if !hasRoute(routes, want) {
			t.Fatalf("pod route %v missing from %v", want, routes)
		}
	}
}

func assertHostSide(t *testing.T, e *env, a *skel.CmdArgs, ip netip.Addr, mtu int) {
	t.Helper()
	h := handleIn(t, e.host)
	l, err := h.LinkByName(HostVethName(a.ContainerID, a.IfName))
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().MTU != mtu || l.Attrs().Alias != "fjord/fjord-test" {
		t.Fatalf("host link: MTU %d alias %q", l.Attrs().MTU, l.Attrs().Alias)
	}
	att := attachment{PodIP: ip, Gateway: e.node.Gateway}
	if err := checkAddr(h, l, hostPrefix(e.node.Gateway)); err != nil {
		t.Fatal(err)
	}
	routes, _ := h.RouteList(l, netlink.FAMILY_V4)
	if !hasRoute(routes, hostRoute(l.Attrs().Index, att)) {
		t.Fatalf("host route to %v missing: %v", ip, routes)
	}
}

// udpExchange sends a datagram from the pod to the gateway and back, proving ARP and
// routes work both ways. Traffic stays inside the test's namespaces.
func udpExchange(t *testing.T, host, pod testNS, gw, podIP netip.Addr) {
	t.Helper()
	var srv *net.UDPConn
	var cli *net.UDPConn
	err := host.Do(func(ns.NetNS) (err error) {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: gw.AsSlice()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = pod.Do(func(ns.NetNS) (err error) {
		cli, err = net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(5 * time.Second)
	srv.SetDeadline(deadline)
	cli.SetDeadline(deadline)
	if _, err := cli.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "ping" || from.Addr().Unmap() != podIP {
		t.Fatalf("gateway got %q from %v, err %v; want ping from %v", buf[:n], from, err, podIP)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	if n, err = cli.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("pod got %q, err %v", buf[:n], err)
	}
}

func TestMTUOverride(t *testing.T) {
	e := newEnv(t)
	pod := newNetns(t, "pod")
	a := args("mtu", "net1", pod.path(), e.conf("1.1.0", map[string]any{"mtu": 1300}))
	res, _ := e.add("1.1.0", a)
	for _, i := range res.Interfaces {
		if i.Mtu != 1300 {
			t.Errorf("result interface %s MTU %d, want 1300", i.Name, i.Mtu)
		}
	}
	if l, err := handleIn(t, pod).LinkByName("net1"); err != nil || l.Attrs().MTU != 1300 {
		t.Fatalf("pod link MTU: %v %v", l, err)
	}
}

func TestNotReady(t *testing.T) {
	e := newEnv(t)
	pod := newNetns(t, "pod")
	empty := t.TempDir()
	conf := e.conf("1.1.0", map[string]any{"runDir": empty})
	_, err := e.run((*Plugin).Add, args("c1", "eth0", pod.path(), conf))
	wantCode(t, err, types.ErrTryAgainLater)
	_, err = e.run((*Plugin).Status, args("", "", "", conf))
	wantCode(t, err, types.ErrPluginNotAvailable)
	e.assertClean()
	if _, err := e.run((*Plugin).Status, args("", "", "", e.conf("1.1.0", nil))); err != nil {
		t.Fatalf("STATUS with node.json: %v", err)
	}
}

func TestRetriedAddKeepsAttachment(t *testing.T) {
	e := newEnv(t)
	pod := newNetns(t, "pod")
	a := args("twice", "eth0", pod.path(), e.conf("1.1.0", nil))
	res, _ := e.add("1.1.0", a)
	_, err := e.run((*Plugin).Add, a)
	wantCode(t, err, ErrLinkExists)
	// The failed second ADD must not have undone the first one's work.
	if got := e.allocations("fjord-test"); len(got) != 1 || got[0] != res.IPs[0].Address.IP.String() {
		t.Fatalf("allocations after retried ADD: %v", got)
	}
	if len(e.hostVeths()) != 1 {
		t.Fatal("retried ADD removed the host veth")
	}
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	ifaces := map[string]string{}
	for i := range 3 {
		pod := newNetns(t, fmt.Sprintf("pod%d", i))
		id := fmt.Sprintf("gc%d", i)
		e.add("1.1.0", args(id, "eth0", pod.path(), e.conf("1.1.0", nil)))
		ifaces[id] = HostVethName(id, "eth0")
	}
	// Another network on the same host: GC of fjord-test must leave it alone.
	otherPod := newNetns(t, "other")
	other := e.conf("1.1.0", map[string]any{"name": "other-net"})
	e.add("1.1.0", args("gc1", "net1", otherPod.path(), other))

	gc := e.conf("1.1.0", map[string]any{"cni.dev/valid-attachments": []types.GCAttachment{{ContainerID: "gc0", IfName: "eth0"}}})
	if _, err := e.run((*Plugin).GC, args("", "", "", gc)); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := e.allocations("fjord-test"); len(got) != 1 {
		t.Fatalf("allocations after GC: %v, want only gc0's", got)
	}
	if got := e.allocations("other-net"); len(got) != 1 {
		t.Fatalf("other network's allocations after GC: %v", got)
	}
	veths := map[string]bool{}
	for _, v := range e.hostVeths() {
		veths[v] = true
	}
	if !veths[ifaces["gc0"]] || veths[ifaces["gc1"]] || veths[ifaces["gc2"]] || !veths[HostVethName("gc1", "net1")] || len(veths) != 2 {
		t.Fatalf("host veths after GC: %v", veths)
	}
	// GC at 1.0.0 is refused.
	_, err := e.run((*Plugin).GC, args("", "", "", e.conf("1.0.0", nil)))
	wantCode(t, err, types.ErrIncompatibleCNIVersion)
}

func TestGCAfterCIDRChange(t *testing.T) {
	e := newEnv(t)
	pod := newNetns(t, "pod")
	e.add("1.1.0", args("old", "eth0", pod.path(), e.conf("1.1.0", nil)))
	e.node.PodCIDR, e.node.Gateway = netip.MustParsePrefix("10.244.7.0/24"), netip.MustParseAddr("10.244.7.1")
	nodestate.Write(e.runDir, e.node)
	gc := e.conf("1.1.0", map[string]any{"cni.dev/valid-attachments": []types.GCAttachment{{ContainerID: "old", IfName: "eth0"}}})
	if _, err := e.run((*Plugin).GC, args("", "", "", gc)); err != nil {
		t.Fatal(err)
	}
	if got := e.allocations("fjord-test"); len(got) != 0 {
		t.Fatalf("allocation outside the new pod CIDR survived GC: %v", got)
	}
}

func TestConcurrentAdds(t *testing.T) {
	e := newEnv(t)
	const n = 20
	pods := make([]testNS, n)
	for i := range pods {
		pods[i] = newNetns(t, fmt.Sprintf("p%d", i))
	}
	ips := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := e.run((*Plugin).Add, args(fmt.Sprintf("conc%d", i), "eth0", pods[i].path(), e.conf("1.1.0", nil)))
			if err != nil {
				t.Errorf("ADD %d: %v", i, err)
				return
			}
			var r current.Result
			json.Unmarshal(out, &r)
			ips[i] = r.IPs[0].Address.IP.String()
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("address %s handed out twice: %v", ip, ips)
		}
		seen[ip] = true
	}
	if len(e.hostVeths()) != n || len(e.allocations("fjord-test")) != n {
		t.Fatalf("%d veths, %d allocations, want %d", len(e.hostVeths()), len(e.allocations("fjord-test")), n)
	}
	for i := range n {
		wg.Go(func() {
			if _, err := e.run((*Plugin).Del, args(fmt.Sprintf("conc%d", i), "eth0", pods[i].path(), e.conf("1.1.0", nil))); err != nil {
				t.Errorf("DEL %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	e.assertClean()
}

func TestFaultRollback(t *testing.T) {
	e := newEnv(t)
	pod := newNetns(t, "pod")
	for _, step := range []string{"allocate", "veth", "pod", "host"} {
		t.Run(step, func(t *testing.T) {
			p := &Plugin{Stdout: new(discard), fault: func(s string) error {
				if s == step {
					return errors.New("injected failure at " + s)
				}
				return nil
			}}
			err := e.host.Do(func(ns.NetNS) error {
				return p.Add(args("fault", "eth0", pod.path(), e.conf("1.1.0", nil)))
			})
			if err == nil {
				t.Fatal("ADD succeeded despite the fault")
			}
			e.assertClean()
			if _, err := handleIn(t, pod).LinkByName("eth0"); err == nil {
				t.Fatal("pod interface left behind")
			}
		})
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
