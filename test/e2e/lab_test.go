// Package e2e drives the fjord binary the way a user does: it brings labs up, sends
// traffic between pods, restarts and deletes things, and checks that `lab down` leaves
// nothing behind. It needs root; it is skipped in -short mode.
//
// Test labs use their own names and underlay subnets (198.18.160.0/24 and up), so they
// never collide with a user's default lab. All traffic stays inside lab namespaces.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fjordBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fjord-e2e-bin-")
	if err != nil {
		panic(err)
	}
	for _, b := range []string{"fjord", "fjord-cni"} {
		// Static, as `make build`: the Kubernetes lab puts this binary into fjord's image.
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "../../cmd/"+b)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b, err, out)
			os.Exit(1)
		}
	}
	fjordBin = filepath.Join(dir, "fjord")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lab is one test lab.
type lab struct {
	t      *testing.T
	name   string
	subnet string
}

// requireRoot skips lab tests in -short mode (make test-unit) and fails them when not
// run as root: an end-to-end test that cannot run must not pass.
func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end lab tests need root; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Fatal("end-to-end lab tests need root: run the suite as root (make test), or use -short (make test-unit)")
	}
}

func (l *lab) env() []string {
	return append(os.Environ(), "FJORD_ETCD_ENDPOINTS=unix:///run/fjord/"+l.name+"/etcd.sock")
}

// run runs fjord with the lab's store and returns its output; it fails the test on error.
func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := l.try(args...)
	if err != nil {
		l.t.Fatalf("fjord %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (l *lab) try(args ...string) (string, error) {
	cmd := exec.Command(fjordBin, args...)
	cmd.Env = l.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func upLab(t *testing.T, name, subnet string, extra ...string) *lab {
	requireRoot(t)
	l := &lab{t: t, name: name, subnet: subnet}
	t.Cleanup(func() {
		if out, err := l.try("lab", "down", "--name", name); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
	})
	out := l.run(append([]string{"lab", "up", "--name", name, "--subnet", subnet}, extra...)...)
	t.Logf("lab up:\n%s", out)
	if strings.Contains(out, "FAIL") {
		t.Fatalf("lab up reported failures:\n%s", out)
	}
	return l
}

func (l *lab) podIP(pod string) string {
	var p struct {
		Status struct {
			PodIP string `json:"podIP"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(l.run("get", "pod", pod, "-o", "json")), &p); err != nil || p.Status.PodIP == "" {
		l.t.Fatalf("pod %s has no IP (%v)", pod, err)
	}
	return p.Status.PodIP
}

func (l *lab) podCIDR(node string) string {
	var n struct {
		Spec struct {
			PodCIDR string `json:"podCIDR"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(l.run("get", "node", node, "-o", "json")), &n); err != nil || n.Spec.PodCIDR == "" {
		l.t.Fatalf("node %s has no pod CIDR (%v)", node, err)
	}
	return n.Spec.PodCIDR
}

// inNode runs a command in a node's namespace.
func (l *lab) inNode(node string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", "fjord-" + l.name + "-" + node}, args...)...).CombinedOutput()
	return string(out), err
}

// pingThroughAgentKills pings echo-n2 from echo-n1 at 100 packets/s while the agents of
// n1 and n2 are killed with SIGKILL and restarted (pause after each), and fails the test
// unless every one of count packets came back.
func (l *lab) pingThroughAgentKills(t *testing.T, count int, pause time.Duration) {
	t.Helper()
	ping := exec.Command(fjordBin, "exec", "echo-n1", "--", "ping", "-q", "-i", "0.01", "-c", strconv.Itoa(count), "-W", "1", l.podIP("echo-n2"))
	ping.Env = l.env()
	var out strings.Builder
	ping.Stdout, ping.Stderr = &out, &out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, n := range []string{"n1", "n2"} {
		l.run("lab", "restart-agent", "--name", l.name, "--kill", n)
		time.Sleep(pause)
	}
	if err := ping.Wait(); err != nil || !strings.Contains(out.String(), fmt.Sprintf(" %d received", count)) {
		t.Fatalf("packets lost during agent restarts: %v\n%s", err, out.String())
	}
}

// eventually polls until cond holds; the bound only stops a broken test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never happened: %s", what)
}

func TestVXLANLab(t *testing.T) {
	l := upLab(t, "e2evx", "198.18.160.0/24")

	t.Run("every pod reaches every other pod", func(t *testing.T) {
		out := l.run("lab", "check", "--name", l.name)
		if strings.Count(out, " ok ") != 6 {
			t.Fatalf("want 6 ok probes:\n%s", out)
		}
	})

	t.Run("the host reaches pods on every node through the ingress", func(t *testing.T) {
		url := "http://198.18.160.11/"
		seen := map[string]bool{}
		eventually(t, "ingress answers from all three echo pods", func() bool {
			out, err := exec.Command("curl", "-s", "--max-time", "2", url).CombinedOutput()
			if err == nil {
				for _, f := range strings.Fields(string(out)) {
					if v, ok := strings.CutPrefix(f, "pod="); ok {
						seen[v] = true
					}
				}
			}
			return len(seen) == 3
		})
		out, err := exec.Command("curl", "-sk", "--max-time", "2", "https://198.18.160.11/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "pod=echo-") {
			t.Fatalf("HTTPS through the ingress: %v %s", err, out)
		}
	})

	t.Run("DF ping filling the pod MTU passes, one byte more fails", func(t *testing.T) {
		dst := l.podIP("echo-n2")
		// 1450 pod MTU - 20 IPv4 - 8 ICMP = 1422 bytes of payload.
		if out, err := l.try("exec", "echo-n1", "--", "ping", "-c1", "-W2", "-M", "do", "-s", "1422", dst); err != nil {
			t.Fatalf("full-MTU ping failed: %v\n%s", err, out)
		}
		out, err := l.try("exec", "echo-n1", "--", "ping", "-c1", "-W2", "-M", "do", "-s", "1423", dst)
		if err == nil || !strings.Contains(out, "mtu=1450") {
			t.Fatalf("a ping one byte over the MTU must fail locally with mtu=1450: %v\n%s", err, out)
		}
	})

	t.Run("killing and restarting agents under traffic loses nothing", func(t *testing.T) {
		before, _ := l.inNode("n1", "ip", "route")
		l.pingThroughAgentKills(t, 300, 0)
		eventually(t, "restarted agents are Ready", func() bool {
			o, _ := l.try("get", "nodes")
			return strings.Count(o, " Ready ") == 3
		})
		after, _ := l.inNode("n1", "ip", "route")
		if before != after {
			t.Fatalf("routes changed across the restart:\nbefore\n%s\nafter\n%s", before, after)
		}
	})

	t.Run("deleting a node removes its routes everywhere", func(t *testing.T) {
		cidr := l.podCIDR("n3")
		for _, n := range []string{"n1", "n2"} {
			if r, _ := l.inNode(n, "ip", "route"); !strings.Contains(r, cidr) {
				t.Fatalf("%s has no route to n3's %s before the test:\n%s", n, cidr, r)
			}
		}
		l.run("delete", "node", "n3")
		for _, n := range []string{"n1", "n2"} {
			eventually(t, n+" drops its route to "+cidr, func() bool {
				r, _ := l.inNode(n, "ip", "route")
				return !strings.Contains(r, cidr)
			})
		}
	})
}

func TestRoutedLab(t *testing.T) {
	l := upLab(t, "e2ert", "198.18.161.0/24", "--mode", "routed")
	out := l.run("lab", "check", "--name", l.name)
	if strings.Count(out, " ok ") != 6 {
		t.Fatalf("want 6 ok probes:\n%s", out)
	}
	// Routed mode: no encapsulation, the pod MTU is the underlay's.
	dst := l.podIP("echo-n3")
	if o, err := l.try("exec", "echo-n1", "--", "ping", "-c1", "-W2", "-M", "do", "-s", "1472", dst); err != nil {
		t.Fatalf("full 1500-byte ping in routed mode: %v\n%s", err, o)
	}
	r, _ := l.inNode("n1", "ip", "route")
	if strings.Contains(r, "fjord.1") || !strings.Contains(r, "via 198.18.161.13 dev eth0") {
		t.Fatalf("routed mode must route via the peer's underlay address:\n%s", r)
	}
}

func TestUserPodWithOwnCommand(t *testing.T) {
	l := upLab(t, "e2eup", "198.18.162.0/24", "--nodes", "2")
	manifest := `apiVersion: v1
kind: Pod
metadata:
  name: custom
  labels: {app: custom}
spec:
  nodeName: n2
  containers:
  - name: srv
    image: anything
    command: ["` + fjordBin + `", "echo", "--http", "8081", "--tcp", "0", "--udp", "0", "--pod", "custom-server"]
`
	f := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run("apply", "-f", f)
	var ip string
	eventually(t, "custom pod running", func() bool {
		o, _ := l.try("get", "pod", "custom", "-o", "json")
		var p struct {
			Status struct{ Phase, PodIP string } `json:"status"`
		}
		_ = json.Unmarshal([]byte(o), &p)
		ip = p.Status.PodIP
		return p.Status.Phase == "Running" && ip != ""
	})
	eventually(t, "custom server answers from another node", func() bool {
		o, err := l.try("exec", "echo-n1", "--", "curl", "-s", "--max-time", "2", "http://"+ip+":8081/")
		return err == nil && strings.Contains(o, "pod=custom-server")
	})
	l.run("delete", "pod", "custom")
	eventually(t, "custom pod's namespace removed", func() bool {
		_, err := os.Stat("/run/netns/fjord-" + l.name + "-pod-default-custom")
		return os.IsNotExist(err)
	})
}

func TestLabDownLeavesNothing(t *testing.T) {
	requireRoot(t)
	l := &lab{t: t, name: "e2edn", subnet: "198.18.163.0/24"}
	l.run("lab", "up", "--name", l.name, "--subnet", l.subnet, "--nodes", "2")
	// Simulate a crash: kill -9 every lab process, then run down.
	for _, pid := range labPIDs(l.name) {
		_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
	}
	l.run("lab", "down", "--name", l.name)
	if left := labPIDs(l.name); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if out, _ := exec.Command("ip", "netns", "list").CombinedOutput(); strings.Contains(string(out), "fjord-"+l.name) {
		t.Errorf("namespaces left:\n%s", out)
	}
	if out, _ := exec.Command("ip", "-br", "link").CombinedOutput(); strings.Contains(string(out), "fjord-"+l.name) {
		t.Errorf("links left:\n%s", out)
	}
	if out, _ := exec.Command("ip", "route").CombinedOutput(); strings.Contains(string(out), "198.18.163.") {
		t.Errorf("routes left:\n%s", out)
	}
	if _, err := os.Stat("/run/fjord/" + l.name); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
	// A second down is harmless.
	l.run("lab", "down", "--name", l.name)
}

// labPIDs finds live processes carrying the lab's marker.
func labPIDs(name string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && strings.Contains(string(env)+"\x00", "FJORD_LAB="+name+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}
