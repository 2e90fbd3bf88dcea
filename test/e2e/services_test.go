package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	fjordlab "github.com/fjord-net/fjord/internal/lab"
)

// Services on a lab: three web pods (one per node, app=web) behind Services with every
// scheduler. Service IPs come from 10.96.0.0/16; node ports from 30000-32767.

const webPods = `
apiVersion: v1
kind: Pod
metadata: {name: web-n1, labels: {app: web}}
spec:
  nodeName: n1
  containers: [{name: web, image: fjord/echo, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 9000, protocol: UDP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-n2, labels: {app: web}}
spec:
  nodeName: n2
  containers: [{name: web, image: fjord/echo, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 9000, protocol: UDP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-n3, labels: {app: web}}
spec:
  nodeName: n3
  containers: [{name: web, image: fjord/echo, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 9000, protocol: UDP}]}]
`

func service(name, scheduler string, extra string) string {
	ann := ""
	if scheduler != "" {
		ann = fmt.Sprintf("\n  annotations: {fjord.dev/scheduler: %s}", scheduler)
	}
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata:
  name: %s%s
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, targetPort: dns, protocol: UDP}
%s
`, name, ann, extra)
}

func (l *lab) apply(t *testing.T, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run("apply", "-f", f)
}

// svcIP reads a Service's cluster IP.
func (l *lab) svcIP(name string) string {
	var s struct {
		Spec struct {
			ClusterIP string `json:"clusterIP"`
		} `json:"spec"`
	}
	mustJSON(l.t, l.run("get", "svc", name, "-o", "json"), &s)
	if s.Spec.ClusterIP == "" {
		l.t.Fatalf("service %s has no cluster IP", name)
	}
	return s.Spec.ClusterIP
}

// podNS is the network namespace path of a lab pod.
func (l *lab) podNS(pod string) string { return "/run/netns/fjord-" + l.name + "-pod-default-" + pod }

// fetch does one HTTP request from inside a pod and returns the answering pod's name.
func (l *lab) fetch(fromPod, addr string) (string, error) {
	line, err := fjordlab.HTTPGetIn(l.podNS(fromPod), addr, "/")
	if err != nil {
		return "", err
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "pod="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no pod in %q", line)
}

// counts fetches n times and counts answers per pod.
func (l *lab) counts(t *testing.T, fromPod, addr string, n int) map[string]int {
	t.Helper()
	c := map[string]int{}
	for i := 0; i < n; i++ {
		p, err := l.fetch(fromPod, addr)
		if err != nil {
			t.Fatalf("request %d to %s from %s: %v", i, addr, fromPod, err)
		}
		c[p]++
	}
	return c
}

// waitServing waits until the service answers from fromPod with all want pods seen.
func (l *lab) waitServing(t *testing.T, fromPod, addr string, want int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s serves from %d pods", addr, want), func() bool {
		seen := map[string]bool{}
		for i := 0; i < 3*want+3; i++ {
			p, err := l.fetch(fromPod, addr)
			if err != nil {
				return false
			}
			seen[p] = true
		}
		return len(seen) == want
	})
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

func TestServicesLab(t *testing.T) {
	l := upLab(t, "e2esv", "198.18.164.0/24", "--no-demo", "--proxy-config", "../../internal/proxy/config/testdata/kube-proxy-config.yaml")
	l.apply(t, webPods+
		service("web-rr", "rr", "")+
		service("web-wrr", "wrr", "")+
		service("web-sh", "sh", "")+
		service("web-maglev", "maglev", "")+
		service("web-lc", "lc", "")+
		service("web-aff", "", "  sessionAffinity: ClientIP")+
		service("web-np", "", "  type: NodePort")+
		`---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports: [{name: http, port: 80}]
`)
	eventually(t, "web pods running", func() bool {
		o, _ := l.try("get", "pods")
		return strings.Count(o, "Running") == 3
	})
	rr := l.svcIP("web-rr") + ":80"
	for _, from := range []string{"web-n1", "web-n2", "web-n3"} {
		l.waitServing(t, from, rr, 3)
	}

	t.Run("rr is exact", func(t *testing.T) {
		c := l.counts(t, "web-n1", rr, 30)
		for _, p := range []string{"web-n1", "web-n2", "web-n3"} {
			if c[p] != 10 {
				t.Fatalf("rr over 30 requests: %v", c)
			}
		}
	})

	t.Run("wrr follows weights", func(t *testing.T) {
		weights := fmt.Sprintf("%s=3,%s=1,%s=1", l.podIP("web-n1"), l.podIP("web-n2"), l.podIP("web-n3"))
		l.apply(t, strings.Replace(service("web-wrr", "wrr", ""), "annotations: {", "annotations: {fjord.dev/weights: \""+weights+"\", ", 1))
		addr := l.svcIP("web-wrr") + ":80"
		// Six full cycles of 3+1+1 slots, from wherever the counter stands.
		eventually(t, "wrr in proportion 3:1:1", func() bool {
			c := l.counts(t, "web-n2", addr, 30)
			return c["web-n1"] == 18 && c["web-n2"] == 6 && c["web-n3"] == 6
		})
	})

	t.Run("sh and maglev keep a client on one endpoint", func(t *testing.T) {
		for _, svc := range []string{"web-sh", "web-maglev"} {
			addr := l.svcIP(svc) + ":80"
			eventually(t, svc+" answers", func() bool { _, err := l.fetch("web-n2", addr); return err == nil })
			if c := l.counts(t, "web-n2", addr, 20); len(c) != 1 {
				t.Fatalf("%s spread one client over %v", svc, c)
			}
		}
	})

	t.Run("session affinity holds", func(t *testing.T) {
		addr := l.svcIP("web-aff") + ":80"
		eventually(t, "web-aff answers", func() bool { _, err := l.fetch("web-n3", addr); return err == nil })
		if c := l.counts(t, "web-n3", addr, 20); len(c) != 1 {
			t.Fatalf("affinity broken: %v", c)
		}
	})

	t.Run("lc sends new connections to the least loaded endpoint", func(t *testing.T) {
		addr := l.svcIP("web-lc") + ":80"
		eventually(t, "web-lc answers", func() bool { _, err := l.fetch("web-n1", addr); return err == nil })
		// Hold two connections open: they land on two different endpoints.
		var held []net.Conn
		seen := map[string]bool{}
		for i := 0; i < 2; i++ {
			c, err := fjordlab.DialIn(l.podNS("web-n1"), "tcp", addr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if v, ok := strings.CutPrefix(line, "pod="); ok || strings.HasPrefix(line, "pod=") {
					seen[strings.Fields(v)[0]] = true
					break
				}
			}
		}
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		if len(seen) != 2 {
			t.Fatalf("two held connections went to %v; lc must spread them", seen)
		}
		// The next short request must go to the third, idle endpoint.
		p, err := l.fetch("web-n1", addr)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("lc sent a new connection to %s, which holds a connection, while another endpoint was idle", p)
		}
	})

	t.Run("NodePort from the host", func(t *testing.T) {
		var s struct {
			Spec struct {
				Ports []struct {
					NodePort int `json:"nodePort"`
				} `json:"ports"`
			} `json:"spec"`
		}
		mustJSON(t, l.run("get", "svc", "web-np", "-o", "json"), &s)
		port := s.Spec.Ports[0].NodePort
		for _, node := range []string{"198.18.164.11", "198.18.164.12", "198.18.164.13"} {
			url := fmt.Sprintf("http://%s:%d/", node, port)
			eventually(t, "NodePort "+url, func() bool {
				out, err := exec.Command("curl", "-s", "--max-time", "2", url).CombinedOutput()
				return err == nil && strings.Contains(string(out), "pod=web-")
			})
		}
	})

	t.Run("helper listeners: healthz and metrics answer, the userspace range is closed", func(t *testing.T) {
		nodes := []string{"198.18.164.11", "198.18.164.12", "198.18.164.13"}
		for _, node := range nodes {
			url := "http://" + node + ":10256/healthz"
			eventually(t, url, func() bool {
				out, err := exec.Command("curl", "-s", "--max-time", "2", "-w", " %{http_code}", url).CombinedOutput()
				return err == nil && strings.Contains(string(out), `"nodeEligible": true`) && strings.HasSuffix(string(out), " 200")
			})
		}
		if out, err := l.inNode("n1", "curl", "-s", "--max-time", "2", "http://127.0.0.1:10249/metrics"); err != nil || !strings.Contains(out, "kubeproxy_sync_proxy_rules_duration_seconds_count") {
			t.Errorf("metrics on 127.0.0.1:10249 in n1: %v %.200s", err, out)
		}
		// web-lc's TCP port is served by the userspace proxy on 61000 of every node;
		// its service answers (the lc subtest), but the port itself does not, from the host.
		if out, err := exec.Command("curl", "-s", "--max-time", "2", "http://198.18.164.11:61000/").CombinedOutput(); err == nil {
			t.Errorf("198.18.164.11:61000 answered from outside: %.200s", out)
		}
	})

	t.Run("a service without endpoints rejects at once", func(t *testing.T) {
		addr := l.svcIP("empty") + ":80"
		eventually(t, "empty service rejects", func() bool {
			_, err := fjordlab.DialIn(l.podNS("web-n1"), "tcp", addr, 3*time.Second)
			return errors.Is(err, syscall.ECONNREFUSED)
		})
	})

	t.Run("restarting an agent keeps established connections and the table", func(t *testing.T) {
		addr := l.svcIP("web-rr") + ":80"
		conn, err := fjordlab.DialIn(l.podNS("web-n1"), "tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		get := func() error {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return err
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return err
		}
		if err := get(); err != nil {
			t.Fatal(err)
		}
		before, _ := l.inNode("n1", "nft", "list", "table", "ip", "fjord")
		l.run("lab", "restart-agent", "--name", l.name, "--kill", "n1")
		eventually(t, "n1 Ready again", func() bool {
			o, _ := l.try("get", "nodes")
			return strings.Count(o, " Ready ") == 3
		})
		if err := get(); err != nil {
			t.Fatalf("the established connection broke across the agent restart: %v", err)
		}
		after, _ := l.inNode("n1", "nft", "list", "table", "ip", "fjord")
		if strings.Count(before, "\n") != strings.Count(after, "\n") {
			t.Fatalf("the restart changed the table (%d lines before, %d after)", strings.Count(before, "\n"), strings.Count(after, "\n"))
		}
	})

	t.Run("scaling endpoints under traffic fails no connection", func(t *testing.T) {
		addr := l.svcIP("web-rr") + ":80"
		stop := make(chan struct{})
		type result struct {
			ok, failed int
			errs       []string
		}
		done := make(chan result)
		go func() {
			var res result
			for i := 0; i < 20000; i++ { // bounded; stopped much earlier
				select {
				case <-stop:
					done <- res
					return
				default:
				}
				if _, err := l.fetch("web-n1", addr); err != nil {
					res.failed++
					if len(res.errs) < 5 {
						res.errs = append(res.errs, err.Error())
					}
				} else {
					res.ok++
				}
			}
			done <- res
		}()
		// Scale up: a fourth pod joins and starts taking traffic.
		l.apply(t, strings.ReplaceAll(strings.Split(webPods, "---")[1], "web-n2", "web-n4"))
		for _, from := range []string{"web-n1", "web-n3"} {
			l.waitServing(t, from, addr, 4)
		}
		// Scale down the way a rollout does: take web-n2 out of the Service first,
		// wait until it gets no new connections, then delete it.
		l.apply(t, strings.Replace(strings.Split(webPods, "---")[1], "app: web", "app: retired", 1))
		// Every node's proxy must have dropped it, the client's (n1) included.
		for _, from := range []string{"web-n1", "web-n3", "web-n4"} {
			eventually(t, "web-n2 out of rotation as seen from "+from, func() bool {
				c := l.counts(t, from, addr, 12)
				return c["web-n2"] == 0 && len(c) == 3
			})
		}
		l.run("delete", "pod", "web-n2")
		time.Sleep(500 * time.Millisecond)
		close(stop)
		res := <-done
		if res.failed > 0 || res.ok == 0 {
			t.Fatalf("%d of %d requests failed while scaling: %v", res.failed, res.ok+res.failed, res.errs)
		}
		t.Logf("%d requests while scaling up and down, none failed", res.ok)
	})

	t.Run("UDP clients move on when their endpoint goes away", func(t *testing.T) {
		// The client is a pod outside the Service, so that whichever endpoint its
		// flow lands on can be deleted: the test always runs to the end.
		l.apply(t, `apiVersion: v1
kind: Pod
metadata: {name: udp-client, labels: {app: client}}
spec:
  nodeName: n1
  containers: [{name: c, image: fjord/echo}]
`)
		eventually(t, "udp-client running", func() bool {
			o, _ := l.try("get", "pods", "udp-client")
			return strings.Contains(o, "Running")
		})
		addr := l.svcIP("web-rr") + ":53"
		conn, err := fjordlab.DialIn(l.podNS("udp-client"), "udp", addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ask := func() string {
			_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := conn.Write([]byte("q")); err != nil {
				return ""
			}
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			if err != nil {
				return ""
			}
			for _, f := range strings.Fields(string(buf[:n])) {
				if v, ok := strings.CutPrefix(f, "pod="); ok {
					return v
				}
			}
			return ""
		}
		var first string
		eventually(t, "UDP answer", func() bool { first = ask(); return first != "" })
		if !strings.HasPrefix(first, "web-") {
			t.Fatalf("the UDP answer came from %q, not a web pod", first)
		}
		// Take the endpoint out of the service (as a rollout would) and kill it.
		l.run("delete", "pod", first)
		// The same socket (same 5-tuple, so the same conntrack entry) must reach
		// another endpoint within a bounded number of tries.
		moved := false
		for i := 0; i < 30 && !moved; i++ {
			if p := ask(); p != "" && p != first {
				moved = true
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !moved {
			t.Fatalf("UDP flow stayed pinned to deleted pod %s", first)
		}
	})

	t.Run("healthCheckNodePort answers 200 only where the endpoints are", func(t *testing.T) {
		// udp-client (app=client) runs on n1 only.
		l.apply(t, `apiVersion: v1
kind: Service
metadata: {name: client-lb}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: client}
  ports: [{name: http, port: 80, targetPort: 8080}]
`)
		var svc struct {
			Spec struct {
				HealthCheckNodePort int `json:"healthCheckNodePort"`
			} `json:"spec"`
		}
		mustJSON(t, l.run("get", "svc", "client-lb", "-o", "json"), &svc)
		if svc.Spec.HealthCheckNodePort == 0 {
			t.Fatal("a LoadBalancer with externalTrafficPolicy Local got no healthCheckNodePort")
		}
		for node, want := range map[string]string{"198.18.164.11": "200", "198.18.164.12": "503", "198.18.164.13": "503"} {
			url := fmt.Sprintf("http://%s:%d/", node, svc.Spec.HealthCheckNodePort)
			eventually(t, url+" answers "+want, func() bool {
				out, _ := exec.Command("curl", "-s", "--max-time", "2", "-w", " %{http_code}", url).CombinedOutput()
				return strings.HasSuffix(string(out), " "+want) && strings.Contains(string(out), `"name": "client-lb"`)
			})
		}
	})
}

// TestFlushedTableIsRepaired: someone flushes fjord's table; the next full resync
// (syncPeriod) puts it back, without restarting anything.
func TestFlushedTableIsRepaired(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "kp.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nnftables:\n  syncPeriod: 2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := upLab(t, "e2edr", "198.18.165.0/24", "--nodes", "2", "--proxy-config", cfg)
	addr := l.svcIP("echo") + ":80"
	viaService := func() bool {
		line, err := fjordlab.HTTPGetIn(l.podNS("echo-n1"), addr, "/")
		// Served through DNAT, the echo pod sees the client pod's own address.
		return err == nil && strings.Contains(line, "client="+l.podIP("echo-n1")+":") || strings.Contains(line, "pod=echo-n1")
	}
	eventually(t, "service reachable", viaService)
	if out, err := l.inNode("n1", "nft", "flush", "table", "ip", "fjord"); err != nil {
		t.Fatalf("flush: %v %s", err, out)
	}
	eventually(t, "rules back after a resync", func() bool {
		out, _ := l.inNode("n1", "nft", "list", "table", "ip", "fjord")
		return strings.Contains(out, "dnat to") && viaService()
	})
}
