package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BGP labs: two racks (subnets) joined by a router namespace running BIRD or FRR; the
// nodes peer with it over eBGP (router AS 65000, rack k's nodes AS 65000+k). Subnets
// 198.18.190.0/24 and up. n1 and n3 sit in rack 1, n2 in rack 2.

func TestBGPWithBIRD(t *testing.T) { testBGP(t, "bird", "e2ebgb", 190) }
func TestBGPWithFRR(t *testing.T)  { testBGP(t, "frr", "e2ebgf", 192) }

func testBGP(t *testing.T, router, name string, third int) {
	requireRoot(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("tcpdump is needed to check the wire (make deps installs it): %v", err)
	}
	rack := func(k int) string { return fmt.Sprintf("198.18.%d", third+k-1) }
	l := upLab(t, name, rack(1)+".0/24", "--racks", "2", "--router", router, "--mode", "bgp")
	cidrs := map[string]string{}
	for _, n := range []string{"n1", "n2", "n3"} {
		cidrs[n] = l.podCIDR(n)
	}

	t.Run("sessions are Established and the router holds every pod CIDR", func(t *testing.T) {
		st := l.bgpStatus()
		if len(st) != 3 {
			t.Fatalf("status of %d nodes, want 3: %+v", len(st), st)
		}
		for _, s := range st {
			if len(s.Peers) != 1 || s.Peers[0].State != "Established" || s.Peers[0].AS != 65000 {
				t.Fatalf("%s: sessions %+v", s.Node, s.Peers)
			}
		}
		table := l.run("lab", "router", "--name", l.name)
		for n, c := range cidrs {
			if !strings.Contains(table, c) {
				t.Errorf("the router's BGP table lacks %s's %s:\n%s", n, c, table)
			}
		}
	})

	t.Run("pods reach pods across racks without encapsulation", func(t *testing.T) {
		// Capture on the router's legs: every packet between racks crosses them.
		pcap := filepath.Join(t.TempDir(), "wire.pcap")
		dump := exec.Command("ip", "netns", "exec", "fjord-"+l.name+"-rt", "tcpdump", "-i", "any", "-n", "-U", "-w", pcap, "udp or icmp or tcp port 8080")
		if err := dump.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // tcpdump opens its socket
		out := l.run("lab", "check", "--name", l.name)
		if strings.Count(out, " ok ") != 6 {
			t.Fatalf("want 6 ok probes:\n%s", out)
		}
		if o, err := l.try("exec", "echo-n1", "--", "ping", "-c3", "-i", "0.2", "-W2", l.podIP("echo-n2")); err != nil {
			t.Fatalf("ping across racks: %v\n%s", err, o)
		}
		// No encapsulation: the pod MTU is the underlay's, a full 1500-byte DF packet passes.
		if o, err := l.try("exec", "echo-n1", "--", "ping", "-c1", "-W2", "-M", "do", "-s", "1472", l.podIP("echo-n2")); err != nil {
			t.Fatalf("full 1500-byte ping across racks: %v\n%s", err, o)
		}
		time.Sleep(500 * time.Millisecond)
		_ = dump.Process.Signal(syscall.SIGTERM)
		_ = dump.Wait()
		read := func(filter string) int {
			o, err := exec.Command("tcpdump", "-n", "-r", pcap, filter).Output()
			if err != nil {
				t.Fatalf("tcpdump -r %s: %v", filter, err)
			}
			return strings.Count(string(o), "\n")
		}
		plain := read("icmp and src net " + cidrs["n1"] + " and dst net " + cidrs["n2"])
		vxlan := read("udp port 4789 or udp port 8472")
		if plain == 0 {
			t.Fatal("no pod-to-pod ICMP seen on the router: the capture saw nothing")
		}
		if vxlan != 0 {
			t.Fatalf("%d VXLAN packets (UDP 4789/8472) crossed the router", vxlan)
		}
	})

	t.Run("an advertised Service IP is reachable from the router", func(t *testing.T) {
		var svc struct {
			Spec struct {
				ClusterIP string `json:"clusterIP"`
			} `json:"spec"`
		}
		if err := json.Unmarshal([]byte(l.run("get", "svc", "echo", "-o", "json")), &svc); err != nil {
			t.Fatal(err)
		}
		if table := l.run("lab", "router", "--name", l.name); !strings.Contains(table, "10.96.0.0/16") {
			t.Fatalf("the router's table lacks the service range:\n%s", table)
		}
		out, err := exec.Command("ip", "netns", "exec", "fjord-"+l.name+"-rt", "curl", "-s", "--max-time", "3", "http://"+svc.Spec.ClusterIP+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "pod=echo-") {
			t.Fatalf("curl %s from the router: %v\n%s", svc.Spec.ClusterIP, err, out)
		}
	})

	t.Run("killing and restarting agents under a 100 pps ping across racks loses nothing", func(t *testing.T) {
		before, _ := l.inNode("n1", "ip", "route")
		l.pingThroughAgentKills(t, 500, time.Second)
		l.waitEstablished()
		after, _ := l.inNode("n1", "ip", "route")
		if before != after {
			t.Fatalf("routes changed across the restart:\nbefore\n%s\nafter\n%s", before, after)
		}
	})

	t.Run("graceful restart: the router keeps a killed agent's routes until it returns", func(t *testing.T) {
		killAgent(t, l.name, "n2")
		// The router sees the TCP session end without a NOTIFICATION and keeps n2's
		// routes as stale (its graceful-restart helper mode), in its table and kernel.
		eventually(t, "the router notices the session is down", func() bool {
			return !l.routerSessionUp("n2", rack(2)+".12")
		})
		for i := 0; i < 3; i++ {
			if table := l.run("lab", "router", "--name", l.name); !strings.Contains(table, cidrs["n2"]) {
				t.Fatalf("the router dropped the restarting node's %s:\n%s", cidrs["n2"], table)
			}
			if r, _ := exec.Command("ip", "netns", "exec", "fjord-"+l.name+"-rt", "ip", "route").CombinedOutput(); !strings.Contains(string(r), cidrs["n2"]) {
				t.Fatalf("the router's kernel dropped %s:\n%s", cidrs["n2"], r)
			}
			time.Sleep(time.Second)
		}
		l.run("lab", "restart-agent", "--name", l.name, "n2") // not running: this starts it
		l.waitEstablished()
		// Both sides announced graceful restart.
		for _, s := range l.bgpStatus() {
			if !strings.HasPrefix(s.Peers[0].GracefulRestart, "peer restart 120s") {
				t.Fatalf("%s: the router's graceful-restart capability was not seen: %+v", s.Node, s.Peers[0])
			}
		}
	})

	t.Run("a deleted node withdraws its routes at once (no graceful restart: it leaves)", func(t *testing.T) {
		c := cidrs["n2"]
		l.run("delete", "node", "n2")
		// Well inside the 120 s graceful-restart time the router would keep them for.
		deadline := time.Now().Add(20 * time.Second)
		for strings.Contains(l.run("lab", "router", "--name", l.name), c) {
			if time.Now().After(deadline) {
				t.Fatalf("the router still holds the deleted node's %s", c)
			}
			time.Sleep(100 * time.Millisecond)
		}
		eventually(t, "n1 drops its route to "+c, func() bool {
			r, _ := l.inNode("n1", "ip", "route")
			return !strings.Contains(r, c)
		})
	})

	t.Run("a partitioned node's CIDR leaves the router and the other nodes", func(t *testing.T) {
		c := cidrs["n3"]
		if _, err := l.inNode("n3", "ip", "link", "set", "eth0", "down"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the router drops "+c, func() bool {
			return !strings.Contains(l.run("lab", "router", "--name", l.name), c)
		})
		// (n2 was deleted above; its agent is gone.)
		eventually(t, "n1 drops its route to "+c, func() bool {
			r, _ := l.inNode("n1", "ip", "route")
			return !strings.Contains(r, c)
		})
	})
}

// TestRacksVXLANAndRouted: on two racks vxlan mode works (the underlay routes the
// tunnels) and routed mode refuses with its reason.
func TestRacksVXLANAndRouted(t *testing.T) {
	requireRoot(t)
	l := &lab{t: t, name: "e2erkr", subnet: "198.18.194.0/24"}
	out, err := l.try("lab", "up", "--name", l.name, "--subnet", l.subnet, "--racks", "2", "--mode", "routed")
	if err == nil || !strings.Contains(out, "host-gw needs every node on one L2 segment") {
		t.Fatalf("routed mode on two racks must be refused with its reason: %v\n%s", err, out)
	}
	v := upLab(t, "e2erkv", "198.18.196.0/24", "--racks", "2", "--mode", "vxlan")
	if out := v.run("lab", "check", "--name", v.name); strings.Count(out, " ok ") != 6 {
		t.Fatalf("want 6 ok probes:\n%s", out)
	}
	if r, _ := v.inNode("n1", "ip", "route"); !strings.Contains(r, "dev fjord.1 proto 77 onlink") {
		t.Fatalf("vxlan mode routes through the tunnel:\n%s", r)
	}
}

type bgpNodeStatus struct {
	Node  string `json:"node"`
	Peers []struct {
		Address, State, GracefulRestart string
		AS                              uint32
	} `json:"peers"`
}

func (l *lab) bgpStatus() []bgpNodeStatus {
	l.t.Helper()
	var st []bgpNodeStatus
	if err := json.Unmarshal([]byte(l.run("bgp", "status", "--lab", l.name, "-o", "json")), &st); err != nil {
		l.t.Fatal(err)
	}
	return st
}

func (l *lab) waitEstablished() {
	l.t.Helper()
	eventually(l.t, "every session Established", func() bool {
		out, err := l.try("bgp", "status", "--lab", l.name)
		return err == nil && strings.Count(out, " Established ") == 3
	})
}

// routerSessionUp asks the router daemon whether its session with node is up.
func (l *lab) routerSessionUp(node, addr string) bool {
	c, _ := os.ReadFile("/run/fjord/" + l.name + "/lab.json")
	if strings.Contains(string(c), `"router": "frr"`) {
		out, _ := l.try("lab", "router", "--name", l.name, "--", "-c", "show ip bgp neighbors "+addr)
		return strings.Contains(out, "BGP state = Established")
	}
	out, _ := l.try("lab", "router", "--name", l.name, "--", "show", "protocols", node)
	return strings.Contains(out, "Established")
}

// killAgent sends SIGKILL to a node's agent, as a crash would.
func killAgent(t *testing.T, labName, node string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		s := string(env) + "\x00"
		if err == nil && strings.Contains(s, "FJORD_LAB="+labName+"\x00") && strings.Contains(s, "FJORD_LAB_PROC=agent-"+node+"\x00") {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no agent of %s found", node)
	}
}

// TestBGPMeshAndCrossSubnet: without racks the nodes peer in a full mesh; with
// --encap cross-subnet, traffic to the other rack goes through VXLAN and traffic within
// a rack is routed plainly.
func TestBGPMeshAndCrossSubnet(t *testing.T) {
	m := upLab(t, "e2ebgm", "198.18.198.0/24", "--mode", "bgp")
	if out := m.run("lab", "check", "--name", m.name); strings.Count(out, " ok ") != 6 {
		t.Fatalf("want 6 ok probes:\n%s", out)
	}
	for _, s := range m.bgpStatus() {
		if len(s.Peers) != 2 {
			t.Fatalf("%s: a full mesh of 3 nodes has 2 sessions per node: %+v", s.Node, s.Peers)
		}
	}
	if r, _ := m.inNode("n1", "ip", "route"); !strings.Contains(r, "via 198.18.198.12 dev eth0 proto 78") {
		t.Fatalf("mesh routes go straight to the peer:\n%s", r)
	}

	x := upLab(t, "e2ebgx", "198.18.206.0/24", "--mode", "bgp", "--racks", "2", "--encap", "cross-subnet")
	if out := x.run("lab", "check", "--name", x.name); strings.Count(out, " ok ") != 6 {
		t.Fatalf("want 6 ok probes:\n%s", out)
	}
	r, _ := x.inNode("n1", "ip", "route")
	if !strings.Contains(r, x.podCIDR("n2")+" via") || !strings.Contains(r, "dev fjord.1 proto 78 onlink") || !strings.Contains(r, x.podCIDR("n3")+" via 198.18.206.13 dev eth0 proto 78") {
		t.Fatalf("cross-subnet: n2 (other rack) through fjord.1, n3 (same rack) plain:\n%s", r)
	}
}
