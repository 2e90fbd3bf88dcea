package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// The troubleshooting tools against injected faults (issue 11): each fault is injected
// with `fjord lab fault`, each tool must name it, and clearing it must make the tool
// pass again. One lab for all of it: faults are cleared between subtests.

// fails runs fjord expecting a non-zero exit, and returns the output.
func (l *lab) fails(args ...string) string {
	l.t.Helper()
	out, err := l.try(args...)
	if err == nil {
		l.t.Fatalf("fjord %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func (l *lab) fault(args ...string) {
	l.t.Helper()
	l.run(append([]string{"lab", "fault", "--name", l.name}, args...)...)
}

func (l *lab) clearFaults() {
	l.t.Helper()
	l.run("lab", "fault", "--name", l.name, "clear")
}

func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: missing %q in:\n%s", what, w, out)
		}
	}
}

// noTraceLeft checks that no trace table is left in any namespace of the lab and that
// the trace's BPF program is gone.
func (l *lab) noTraceLeft(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "fjord-"+l.name+"-") {
			continue
		}
		tables, err := exec.Command("ip", "netns", "exec", f[0], "nft", "list", "tables").CombinedOutput()
		if err != nil || strings.Contains(string(tables), "fjord_trace_") {
			t.Fatalf("%s: trace tables left (%v):\n%s", f[0], err, tables)
		}
	}
	eventually(t, "the trace's BPF program is unloaded", func() bool { return !bpfProgramLoaded("fjord_kfree") })
}

// bpfProgramLoaded reports whether the kernel holds a BPF program with that name.
func bpfProgramLoaded(name string) bool {
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return false
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err == nil && info.Name == name {
			return true
		}
	}
}

type mtuReport struct {
	Paths []struct {
		Layer     string `json:"layer"`
		From      string `json:"from"`
		To        string `json:"to"`
		Reachable bool   `json:"Reachable"`
		Works     int    `json:"Works"`
		Failure   int    `json:"Failure"`
	} `json:"paths"`
	Findings []struct {
		Severity string `json:"severity"`
		What     string `json:"what"`
		Fix      string `json:"fix"`
	} `json:"findings"`
}

// in returns the lab bound to a subtest, so failures end the subtest, not its parent.
func (l *lab) in(t *testing.T) *lab {
	c := *l
	c.t = t
	return &c
}

func TestTroubleshooting(t *testing.T) {
	top := upLab(t, "e2ets", "198.18.170.0/24")

	t.Run("exec shows the pod's own /sys and works while etcd hangs", func(t *testing.T) {
		l := top.in(t)
		if out := strings.TrimSpace(l.run("exec", "echo-n1", "--", "cat", "/sys/class/net/eth0/mtu")); out != "1450" {
			t.Fatalf("pod MTU through /sys: %q, want 1450", out)
		}
		pidB, err := os.ReadFile("/run/fjord/" + l.name + "/pids/etcd.pid")
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(pidB)))
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(pid, syscall.SIGCONT)
		done := make(chan string, 1)
		go func() {
			out, _ := l.try("exec", "echo-n2", "--", "cat", "/sys/class/net/eth0/mtu")
			done <- out
		}()
		select {
		case out := <-done:
			if strings.TrimSpace(out) != "1450" {
				t.Fatalf("exec with etcd stopped: %q", out)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("exec hung while etcd was stopped")
		}
	})

	t.Run("a healthy lab passes doctor and mtu, traces deliver", func(t *testing.T) {
		l := top.in(t)
		// Right after lab up (and etcd's pause above) the proxies may still be syncing.
		var out string
		eventually(t, "doctor passes on the healthy lab", func() bool {
			var err error
			out, err = l.try("doctor")
			return err == nil && !strings.Contains(out, "FAIL")
		})
		contains(t, "doctor", out, "PASS  peers", "PASS  agent     kernel matches the store", "PASS  clock", "WAL fsync p99")
		l.run("mtu")
		contains(t, "trace to the Service", l.run("trace", "echo-n1", "echo"), "DELIVERED to service default/echo:80")
		l.noTraceLeft(t)
	})

	t.Run("a foreign drop rule is named, then DELIVERED once cleared", func(t *testing.T) {
		l := top.in(t)
		dst := l.podIP("echo-n2")
		l.fault("nft-drop", "n2", "--dst", dst+":8080", "--proto", "tcp")
		out := l.fails("trace", "echo-n1", "echo-n2", "--port", "8080")
		contains(t, "trace", out, "DROPPED at n2/nftables inet fault_filter forward: ip daddr "+dst+" tcp dport 8080 drop (handle",
			"fix: this rule is not fjord's: delete it")
		contains(t, "doctor", l.run("doctor", "--node", "n2"), "WARN  firewall  table inet fault_filter chain forward drops traffic")
		l.noTraceLeft(t)
		l.clearFaults()
		contains(t, "trace after clear", l.run("trace", "echo-n1", "echo-n2", "--port", "8080"), "DELIVERED to pod default/echo-n2")
		l.noTraceLeft(t)
	})

	t.Run("a Service without endpoints is named as such", func(t *testing.T) {
		l := top.in(t)
		l.apply(t, "apiVersion: v1\nkind: Service\nmetadata: {name: nobody, namespace: default}\nspec:\n  selector: {app: nobody}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n")
		defer l.run("delete", "svc", "nobody")
		eventually(t, "the proxies program the Service", func() bool {
			out, _ := l.try("trace", "echo-n1", "nobody", "--no-probe")
			return strings.Contains(out, "has no endpoints")
		})
		out := l.fails("trace", "echo-n1", "nobody")
		contains(t, "trace", out, "service default/nobody has no endpoints, so fjord's proxy rejects the connection")
		contains(t, "doctor", l.run("doctor", "--node", "n1"), "WARN  services  Services without endpoints", "default/nobody:80/tcp")
		l.noTraceLeft(t)
	})

	t.Run("an MTU black hole is found with the pair and the working MTU", func(t *testing.T) {
		l := top.in(t)
		l.fault("underlay-mtu", "n3", "1400")
		out, err := l.try("mtu", "-o", "json")
		if err == nil {
			t.Fatalf("mtu must fail with a black hole:\n%s", out)
		}
		var rep mtuReport
		mustJSON(t, out[:strings.LastIndex(out, "}")+1], &rep)
		found := map[string]int{}
		for _, p := range rep.Paths {
			if p.Failure == 4 { // probe.Lost: silently lost, no ICMP
				found[p.Layer+" "+p.From+"→"+p.To] = p.Works
			}
		}
		// The lab's veths and bridge accept 4 bytes more than the MTU (room for a VLAN tag).
		if w := found["underlay n1→n3"]; w < 1400 || w > 1404 {
			t.Fatalf("underlay n1→n3 black hole at %d, want 1400..1404; paths %+v", w, rep.Paths)
		}
		if w := found["overlay n1→n3"]; w < 1350 || w > 1354 {
			t.Fatalf("overlay n1→n3 black hole at %d, want 1350..1354; paths %+v", w, rep.Paths)
		}
		text := l.fails("mtu", "n1", "n3")
		contains(t, "mtu text", text, "BLACK HOLE above", "pods talking to n3 need MTU ≤ 135", "raise n3's underlay MTU to 1500")
		contains(t, "trace", l.fails("trace", "echo-n1", "echo-n3", "--size", "1450"), "DROPPED at underlay switch/kernel br_dev_queue_push_xmit on n3")
		doc := l.fails("doctor")
		contains(t, "doctor", doc, "FAIL  mtu       fjord.1 MTU 1450 does not fit eth0's 1400", "FAIL  mtu       underlay MTUs differ between nodes",
			"don't-fragment frames to n3 vanish while small ones pass")
		l.clearFaults()
		l.run("mtu")
		l.noTraceLeft(t)
	})

	t.Run("an ICMP black hole is flagged by doctor", func(t *testing.T) {
		l := top.in(t)
		l.fault("icmp-blackhole", "n2")
		contains(t, "doctor", l.fails("doctor", "--node", "n2"), "FAIL  firewall  table inet fault_icmp chain", "drops the ICMP path-MTU discovery needs")
		l.clearFaults()
		if out := l.run("doctor", "--node", "n2"); strings.Contains(out, "FAIL") {
			t.Fatalf("after clear:\n%s", out)
		}
	})

	t.Run("a partitioned node shows as loss in the latency matrix", func(t *testing.T) {
		l := top.in(t)
		l.fault("partition", "n3")
		var rep struct {
			Nodes []struct {
				From, To string
				Stats    struct {
					Loss float64 `json:"lossPercent"`
				} `json:"stats"`
			} `json:"nodes"`
		}
		mustJSON(t, l.run("latency", "--count", "5", "-o", "json"), &rep)
		loss := map[string]float64{}
		for _, c := range rep.Nodes {
			loss[c.From+"→"+c.To] = c.Stats.Loss
		}
		if loss["n1→n3"] != 100 || loss["n3→n2"] != 100 || loss["n1→n2"] != 0 || len(loss) != 6 {
			t.Fatalf("loss matrix %v", loss)
		}
		contains(t, "doctor", l.fails("doctor", "--node", "n1"), "FAIL  peers     n3 (198.18.170.13) does not answer on the underlay")
		contains(t, "trace", l.fails("trace", "echo-n1", "echo-n3", "--port", "8080"), `DROPPED at underlay switch/nftables bridge fault_partition_n3 forward: oifname "n3" drop`)
		l.clearFaults()
		l.noTraceLeft(t)
	})

	t.Run("a CPU hog is flagged as a noisy neighbour", func(t *testing.T) {
		l := top.in(t)
		l.fault("cpu-hog", "n2", "--duration", "60s")
		out, _ := l.try("doctor", "--node", "n2", "--window", "3s")
		t.Logf("doctor with the hog:\n%s", out)
		contains(t, "doctor", out, "WARN  cpu       noisy neighbour: pid", "in n2's namespace")
		l.clearFaults()
		for _, pid := range labPIDs(l.name) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "fault-hog") {
				t.Fatalf("hog %d still runs after clear", pid)
			}
		}
	})

	t.Run("delay is refused clearly without netem", func(t *testing.T) {
		l := top.in(t)
		contains(t, "delay", l.fails("lab", "fault", "--name", l.name, "delay", "n2", "20ms"), "no netem qdisc (sch_netem)")
	})

	t.Run("the agents export node-to-node RTT", func(t *testing.T) {
		l := top.in(t)
		eventually(t, "n1's agent exports RTT to n2 and n3", func() bool {
			out, _ := l.inNode("n1", "curl", "-s", "--max-time", "2", "http://127.0.0.1:10249/metrics")
			return strings.Contains(out, `fjord_node_rtt_seconds_count{peer="n2"}`) && strings.Contains(out, `fjord_node_peer_reachable{peer="n3"} 1`)
		})
	})

	t.Run("lab down clears faults", func(t *testing.T) {
		l := top.in(t)
		l.clearFaults()
		l.fault("cpu-hog", "n1", "--duration", "60s")
		l.fault("nft-drop", "n1", "--dst", "10.244.9.9")
		out := l.run("lab", "down", "--name", l.name)
		contains(t, "down", out, "cleared 2 faults")
		if left := labPIDs(l.name); len(left) > 0 {
			t.Fatalf("processes left: %v", left)
		}
	})
}
