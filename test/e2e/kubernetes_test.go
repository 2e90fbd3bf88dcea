package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Kubernetes labs: a real control plane that fjord reads, with the lab's runtime
// as kubelet (TestKubernetesLab) or with real kubelets and containerd, fjord installed
// by deploy/fjord.yaml (TestKubernetesRealLab).

func (l *lab) kubectl(args ...string) string {
	l.t.Helper()
	return l.run(append([]string{"lab", "kubectl", "--name", l.name}, args...)...)
}

func (l *lab) kubectlTry(args ...string) (string, error) {
	return l.try(append([]string{"lab", "kubectl", "--name", l.name}, args...)...)
}

// kubeApply applies a manifest with the lab's kubectl.
func (l *lab) kubeApply(manifest string) {
	l.t.Helper()
	cmd := exec.Command(fjordBin, "lab", "kubectl", "--name", l.name, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

type kubePod struct {
	Name, Node, IP string
}

func (l *lab) kubePods(selector string) []kubePod {
	l.t.Helper()
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
			Status struct {
				PodIP string `json:"podIP"`
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(l.kubectl("get", "pods", "-l", selector, "-o", "json")), &list); err != nil {
		l.t.Fatal(err)
	}
	var out []kubePod
	for _, it := range list.Items {
		if it.Status.Phase == "Running" && it.Status.PodIP != "" {
			out = append(out, kubePod{it.Metadata.Name, it.Spec.NodeName, it.Status.PodIP})
		}
	}
	return out
}

var podField = regexp.MustCompile(`pod=(\S+)`)

// answeredBy sends n HTTP requests from inside netns to url and returns how many
// each echo pod answered, and how many failed (the first failure is logged).
func answeredBy(t *testing.T, netns, url string, n int) (map[string]int, int) {
	t.Helper()
	seen, failed := map[string]int{}, 0
	for i := 0; i < n; i++ {
		out, err := exec.Command("nsenter", "--net="+netns, "curl", "-sS", "--max-time", "3", url).CombinedOutput()
		m := podField.FindStringSubmatch(string(out))
		if err != nil || m == nil {
			if failed == 0 {
				t.Logf("request %d to %s failed: %v %s", i, url, err, out)
			}
			failed++
			continue
		}
		seen[m[1]]++
	}
	return seen, failed
}

func TestKubernetesLab(t *testing.T) {
	l := upLab(t, "e2ek8s", "198.18.164.0/24", "--kubernetes")
	pods := l.kubePods("app=echo")
	if len(pods) != 3 {
		t.Fatalf("%d echo pods running, want one per node: %+v", len(pods), pods)
	}
	nodes := map[string]bool{}
	for _, p := range pods {
		nodes[p.Node] = true
	}
	if len(nodes) != 3 {
		t.Fatalf("the Deployment's pods are not spread over the three nodes: %+v", pods)
	}
	// (lab up already had every pod fetch from every other one, without NAT.)
	// A client pod of its own, outside the Deployment (which the test scales down).
	l.kubeApply(`apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeName: n1
  containers: [{name: c, image: fjord/echo}]
`)
	client := "/run/netns/fjord-" + l.name + "-pod-default-client"
	svcIP := strings.TrimSpace(l.kubectl("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"))
	eventually(t, "the client pod reaches the Service", func() bool {
		_, err := os.Stat(client)
		if err != nil {
			return false
		}
		_, failed := answeredBy(t, client, "http://"+svcIP+"/", 1)
		return failed == 0
	})

	t.Run("ClusterIP balances across nodes", func(t *testing.T) {
		seen, failed := answeredBy(t, client, "http://"+svcIP+"/", 60)
		if failed > 0 || len(seen) != 3 {
			t.Fatalf("60 requests to %s: %d failed, answered by %v; want all three pods", svcIP, failed, seen)
		}
	})

	t.Run("NodePort on every node", func(t *testing.T) {
		l.kubectl("expose", "deployment", "echo", "--name", "echo-np", "--type", "NodePort", "--port", "80", "--target-port", "8080")
		port := strings.TrimSpace(l.kubectl("get", "svc", "echo-np", "-o", "jsonpath={.spec.ports[0].nodePort}"))
		for i := 1; i <= 3; i++ {
			url := fmt.Sprintf("http://198.18.164.%d:%s/", 10+i, port)
			eventually(t, "NodePort answers on n"+strconv.Itoa(i), func() bool {
				out, err := exec.Command("curl", "-s", "--max-time", "2", url).CombinedOutput()
				return err == nil && strings.Contains(string(out), "pod=echo-")
			})
		}
	})

	t.Run("Ingress by host, status written", func(t *testing.T) {
		l.kubeApply(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  rules:
  - host: web.lab.local
    http:
      paths:
      - {path: /web, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}
`)
		eventually(t, "the Ingress serves web.lab.local/web", func() bool {
			out, err := exec.Command("curl", "-s", "--max-time", "2", "-H", "Host: web.lab.local", "http://198.18.164.11/web").CombinedOutput()
			return err == nil && strings.Contains(string(out), "pod=echo-") && strings.Contains(string(out), "path=/web")
		})
		out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: other.lab.local", "http://198.18.164.11/web").CombinedOutput()
		// The demo Ingress (no host) still takes other hosts: any 200 is the demo's.
		if string(out) != "200" {
			t.Errorf("other host: %s", out)
		}
		eventually(t, "Ingress status shows the ingress address", func() bool {
			return strings.TrimSpace(l.kubectl("get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")) == "198.18.164.11"
		})
	})

	t.Run("agent killed mid-traffic loses nothing", func(t *testing.T) {
		var wg sync.WaitGroup
		var seen map[string]int
		var failed int
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen, failed = answeredBy(t, client, "http://"+svcIP+"/", 150)
		}()
		time.Sleep(300 * time.Millisecond)
		for _, n := range []string{"n1", "n2", "n3"} {
			l.run("lab", "restart-agent", "--name", l.name, "--kill", n)
		}
		wg.Wait()
		if failed > 0 || len(seen) == 0 {
			t.Fatalf("requests through the Service while every agent was killed and restarted: %d failed (answered by %v)", failed, seen)
		}
	})

	t.Run("scaling the Deployment moves the Service", func(t *testing.T) {
		l.kubectl("scale", "deployment", "echo", "--replicas", "1")
		eventually(t, "one echo pod left and the Service answers from it only", func() bool {
			if len(l.kubePods("app=echo")) != 1 {
				return false
			}
			seen, failed := answeredBy(t, client, "http://"+svcIP+"/", 10)
			return failed == 0 && len(seen) == 1
		})
	})
}

func TestKubernetesRealLab(t *testing.T) {
	l := upLab(t, "e2ekc", "198.18.165.0/24", "--kubernetes", "--runtime", "containerd")
	pods := l.kubePods("app=echo")
	if len(pods) != 3 {
		t.Fatalf("%d echo pods running, want one per node: %+v", len(pods), pods)
	}
	l.kubeApply(`apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeName: n1
  containers:
  - {name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.66.1, args: [pause]}
`)
	eventually(t, "the client pod runs", func() bool {
		return strings.TrimSpace(l.kubectl("get", "pod", "client", "-o", "jsonpath={.status.phase}")) == "Running"
	})

	t.Run("a Service by name through CoreDNS, with kubectl exec", func(t *testing.T) {
		eventually(t, "curl echo.default.svc.cluster.local from the client pod", func() bool {
			out, err := l.kubectlTry("exec", "client", "--", "curl", "-s", "--max-time", "2", "http://echo.default.svc.cluster.local/")
			return err == nil && strings.Contains(out, "pod=echo-")
		})
		if out := l.kubectl("exec", "client", "--", "cat", "/sys/class/net/eth0/mtu"); strings.TrimSpace(out) != "1450" {
			t.Errorf("pod MTU %q, want 1450 (vxlan over a 1500 underlay)", out)
		}
	})

	t.Run("the kubernetes Service from a pod", func(t *testing.T) {
		out := l.kubectl("exec", "client", "--", "sh", "-c", "curl -sk --max-time 3 https://kubernetes.default.svc/version")
		if !strings.Contains(out, `"gitVersion": "v1.37.2"`) {
			t.Fatalf("https://kubernetes.default.svc/version from a pod: %s", out)
		}
	})

	t.Run("kubectl logs", func(t *testing.T) {
		if out := l.kubectl("logs", "-n", "fjord-system", "daemonset/fjord-agent"); !strings.Contains(out, "pod network programmed") {
			t.Fatalf("agent logs: %s", out)
		}
	})

	t.Run("agent pod recreated by its DaemonSet under traffic loses no packet", func(t *testing.T) {
		var target string
		for _, p := range pods {
			if p.Node == "n2" {
				target = p.IP
			}
		}
		agent := strings.TrimSpace(l.kubectl("get", "pods", "-n", "fjord-system", "-l", "app.kubernetes.io/name=fjord-agent",
			"--field-selector", "spec.nodeName=n2", "-o", "jsonpath={.items[0].metadata.name}"))
		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := l.kubectlTry("exec", "client", "--", "ping", "-q", "-i", "0.01", "-c", "1000", "-W", "1", target)
			done <- result{out, err}
		}()
		time.Sleep(time.Second)
		l.kubectl("delete", "pod", "-n", "fjord-system", agent)
		eventually(t, "the DaemonSet's new agent pod on n2 is Ready", func() bool {
			out := l.kubectl("get", "pods", "-n", "fjord-system", "-l", "app.kubernetes.io/name=fjord-agent", "--field-selector", "spec.nodeName=n2",
				"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			return !strings.Contains(out, agent) && strings.Contains(out, " True")
		})
		r := <-done
		if r.err != nil || !strings.Contains(r.out, " 0% packet loss") {
			t.Fatalf("ping across nodes while n2's agent pod was replaced: %v\n%s", r.err, r.out)
		}
	})

	t.Run("a stopped kubelet's endpoints leave the Service", func(t *testing.T) {
		pid, err := os.ReadFile("/run/fjord/" + l.name + "/pids/kubelet-n3.pid")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("kill", "-9", strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
			t.Fatalf("kill kubelet: %v %s", err, out)
		}
		var n3Pod string
		for _, p := range pods {
			if p.Node == "n3" {
				n3Pod = p.Name
			}
		}
		// By cluster IP, not by name: both CoreDNS replicas may run on n3, and a stopped
		// kubelet takes them out of the DNS Service too, which is not what this checks.
		ip := strings.TrimSpace(l.kubectl("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"))
		deadline := time.Now().Add(150 * time.Second)
		for {
			out, err := l.kubectlTry("exec", "client", "--", "sh", "-c", "for i in $(seq 30); do curl -s --max-time 2 http://"+ip+"/ || echo \"curl exit $?\"; echo; done")
			if err == nil && strings.Count(out, "pod=echo-") == 30 && !strings.Contains(out, n3Pod) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("30 requests after n3's kubelet stopped still reach %s or fail:\n%s", n3Pod, out)
			}
			time.Sleep(2 * time.Second)
		}
	})
}
