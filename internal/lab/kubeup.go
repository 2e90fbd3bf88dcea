package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/deploy"
	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/nodereg"
)

// The Kubernetes lab: a real control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler built from the k8s.io/kubernetes module) on
// the first node, the way kubeadm makes a control-plane node that also runs
// workloads; fjord's agents and ingress read the API exactly as they would in a
// cluster; the lab's runtime plays each node's kubelet.

// KubeBinaries are the Kubernetes programs the lab runs.
var KubeBinaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}

// DefaultServiceCIDR is the lab's Service range (the API server's, the agents').
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")

func (c Config) kubeBin(name string) string { return filepath.Join(c.KubeBin, name) }

// kubeEtcdDir holds the API server's etcd: fjord's embedded member, on a unix socket.
func (c Config) kubeEtcdDir() string { return filepath.Join(c.StateDir(), "kube-etcd") }

// KubeEtcdSocket is the client socket of the API server's etcd.
func (c Config) KubeEtcdSocket() string { return filepath.Join(c.kubeEtcdDir(), "etcd.sock") }

func (c Config) serviceCIDR() netip.Prefix {
	if c.ServiceCIDR.IsValid() {
		return c.ServiceCIDR
	}
	return DefaultServiceCIDR
}

// upKubernetes brings up the control plane, the nodes (the lab's runtime as kubelet
// with fjord's processes, or real kubelets with fjord installed by its manifest),
// the ingress and the demo, after the topology exists.
func (c Config) upKubernetes(ctx context.Context, out io.Writer, step func(string, func() error) error) error {
	real := c.Runtime == RuntimeContainerd
	var tars []string
	if real {
		if err := step("images: pause, agnhost, busybox, CoreDNS, ... (cached) and fjord's, from this binary", func() error {
			var err error
			tars, err = c.buildImages(ctx, func(f string, a ...any) { fmt.Fprintf(out, "\n    "+f, a...) })
			return err
		}); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("%d node hosts: mount namespaces, cgroups, private CNI and runtime directories", c.Nodes), func() error {
			if err := c.ensureHostDirs(); err != nil {
				return err
			}
			for i := 1; i <= c.Nodes; i++ {
				if err := c.buildNodeHost(i); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	var client kubernetes.Interface
	if err := step("Kubernetes control plane on n1: etcd, kube-apiserver "+c.APIServerAddr().String()+", controller-manager, scheduler", func() error {
		if err := c.writeKubePKI(c.serviceCIDR()); err != nil {
			return err
		}
		if _, err := c.spawn("kube-etcd", "", "etcd", "--state-dir", c.kubeEtcdDir()); err != nil {
			return err
		}
		if _, err := c.spawnExec("kube-apiserver", c.nodeNSPath(1), c.kubeBin("kube-apiserver"), c.apiserverArgs()...); err != nil {
			return err
		}
		var err error
		if client, err = c.waitAPIServer(ctx); err != nil {
			return err
		}
		for name, args := range map[string][]string{"kube-controller-manager": c.controllerManagerArgs(), "kube-scheduler": c.schedulerArgs()} {
			if _, err := c.spawnExec(name, c.nodeNSPath(1), c.kubeBin(name), args...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if real {
		if err := step("kubectl apply -f deploy/fjord.yaml, and CoreDNS", func() error {
			manifest := deploy.Manifest
			if c.NoIngress {
				var err error
				if manifest, err = manifestWithout(deploy.Manifest, "DaemonSet/fjord-ingress"); err != nil {
					return err
				}
			}
			return c.kubectlApply(ctx, append(append([]byte{}, manifest...), []byte("\n---\n"+c.servicesEndpointManifest()+"\n---\n"+CoreDNSManifest(c.clusterDNS()))...))
		}); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("%d real nodes: containerd, images imported, kubelet; fjord's DaemonSet installs the CNI plugin on each", c.Nodes), func() error {
			if err := c.startRealNodes(ctx, tars); err != nil {
				return err
			}
			if err := c.waitKubeNodes(ctx, client); err != nil {
				return err
			}
			if err := waitKubePodsReady(ctx, client, "fjord-system", "app.kubernetes.io/name=fjord-agent", c.Nodes); err != nil {
				return err
			}
			return waitKubePodsReady(ctx, client, "kube-system", "k8s-app=kube-dns", 1)
		}); err != nil {
			return err
		}
	} else {
		if err := step("fjord's roles, IngressClass and ingress-nginx ConfigMap from deploy/fjord.yaml", func() error {
			objs, err := manifestWithout(deploy.Manifest, "DaemonSet")
			if err != nil {
				return err
			}
			return c.kubectlApply(ctx, append(objs, []byte(kubeLabBindings)...))
		}); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("%d nodes: the lab's runtime as kubelet, fjord agent (%s mode) reading the API", c.Nodes, c.Mode), func() error {
			for i := 1; i <= c.Nodes; i++ {
				if _, err := c.spawn("kubelet-"+c.NodeName(i), c.nodeNSPath(i), c.kubeKubeletArgs(i)...); err != nil {
					return err
				}
				if _, err := c.spawn("agent-"+c.NodeName(i), c.nodeNSPath(i), c.kubeAgentArgs(i)...); err != nil {
					return err
				}
			}
			return c.waitKubeNodes(ctx, client)
		}); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("ingress on n1 (http://%v/, https://%v/)", c.NodeAddr(1), c.NodeAddr(1)), func() error {
			_, err := c.spawn("ingress-n1", c.nodeNSPath(1), c.kubeIngressArgs()...)
			return err
		}); err != nil {
			return err
		}
	}
	if !c.Demo {
		return nil
	}
	demo := KubeDemoManifest(c.Nodes)
	if real {
		demo = RealDemoManifest(c.Nodes)
	}
	if err := step("demo workload: Deployment echo (one pod per node), Service echo, Ingress echo", func() error {
		if err := c.kubectlApply(ctx, []byte(demo)); err != nil {
			return err
		}
		return waitKubePodsReady(ctx, client, "default", "app=echo", c.Nodes)
	}); err != nil {
		return err
	}
	if c.NoIngress {
		fmt.Fprintln(out, "• (no ingress: --no-ingress)")
	} else if err := step(fmt.Sprintf("ingress serves the demo (http://%v/) and reports it in the Ingress status", c.NodeAddr(1)), func() error {
		if err := WaitHTTP(ctx, fmt.Sprintf("http://%v/", c.NodeAddr(1)), 60*time.Second); err != nil {
			return err
		}
		return waitIngressStatus(ctx, client, "default", "echo", c.NodeAddr(1).String())
	}); err != nil {
		return err
	}
	fmt.Fprintln(out)
	pods, err := c.kubeEchoPods(ctx, client)
	if err != nil {
		return err
	}
	res, err := CheckPods(ctx, pods)
	PrintMatrix(out, res)
	return err
}

func (c Config) apiserverArgs() []string {
	k := c.KubeDir()
	ip := c.APIServerAddr().Addr().String()
	return []string{
		"--etcd-servers=" + etcdserver.SocketEndpoint(filepath.Join(c.kubeEtcdDir(), "etcd.sock")),
		"--bind-address=" + ip, "--advertise-address=" + ip, "--secure-port=" + strconv.Itoa(int(c.APIServerAddr().Port())),
		"--tls-cert-file=" + filepath.Join(k, "apiserver.crt"), "--tls-private-key-file=" + filepath.Join(k, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(k, "ca.crt"),
		"--service-cluster-ip-range=" + c.serviceCIDR().String(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(k, "sa.pub"), "--service-account-signing-key-file=" + filepath.Join(k, "sa.key"),
		"--token-auth-file=" + filepath.Join(k, "tokens.csv"),
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--kubelet-preferred-address-types=InternalIP", "--profiling=false",
		"--service-node-port-range=30000-32767",
	}
}

func (c Config) controllerManagerArgs() []string {
	k := c.KubeDir()
	kc := c.Kubeconfig("controller-manager")
	return []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false",
		"--service-account-private-key-file=" + filepath.Join(k, "sa.key"), "--root-ca-file=" + filepath.Join(k, "ca.crt"),
		"--use-service-account-credentials=true",
		"--allocate-node-cidrs=true", "--cluster-cidr=" + c.ClusterCIDR.String(), "--node-cidr-mask-size=24",
		// A lab node that stops heartbeating is noticed in 20 s, not 50.
		"--node-monitor-grace-period=20s", "--node-monitor-period=2s",
		"--service-cluster-ip-range=" + c.serviceCIDR().String(),
		"--cluster-signing-cert-file=" + filepath.Join(k, "ca.crt"), "--cluster-signing-key-file=" + filepath.Join(k, "ca.key"),
	}
}

func (c Config) schedulerArgs() []string {
	kc := c.Kubeconfig("scheduler")
	return []string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"}
}

func (c Config) kubeKubeletArgs(i int) []string {
	return []string{"lab", "kubelet", "--node-name", c.NodeName(i), "--lab", c.Name, "--run-root", c.RunRoot,
		"--kubeconfig", c.Kubeconfig("kubelet-" + c.NodeName(i))}
}

func (c Config) kubeAgentArgs(i int) []string {
	dir := c.NodeDir(i)
	args := []string{"agent", "--node-name", c.NodeName(i), "--iface", "eth0", "--kubeconfig", c.Kubeconfig("agent"),
		"--mode", string(c.Mode), "--cluster-cidr", c.ClusterCIDR.String(), "--service-cidr", c.serviceCIDR().String(),
		"--run-dir", filepath.Join(dir, "run"), "--cni-conf-dir", filepath.Join(dir, "cni", "net.d"),
		"--cni-data-dir", filepath.Join(dir, "cni", "networks"), "--state-dir", dir, "--cni-version", "1.1.0"}
	if c.PodMTU > 0 {
		args = append(args, "--mtu", strconv.Itoa(c.PodMTU))
	}
	if c.ProxyConfig != "" {
		args = append(args, "--config", c.proxyConfigPath())
	}
	return args
}

func (c Config) kubeIngressArgs() []string {
	addr := c.NodeAddr(1).String()
	return []string{"ingress", "--kubeconfig", c.Kubeconfig("ingress"),
		"--http-addr", addr + ":80", "--https-addr", addr + ":443", "--metrics-addr", addr + ":10254",
		"--access-log", filepath.Join(c.LogDir(), "ingress-access.log"),
		"--publish-status-address", addr, "--election-namespace", "fjord-system"}
}

// waitAPIServer waits for /readyz and returns an admin client.
func (c Config) waitAPIServer(ctx context.Context) (kubernetes.Interface, error) {
	rc, err := kubeclient.Config(c.Kubeconfig("admin"))
	if err != nil {
		return nil, err
	}
	client, err := kubeclient.New(rc, "lab")
	if err != nil {
		return nil, err
	}
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return client, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("kube-apiserver not ready after 60s (last: %v; see %s)", last, filepath.Join(c.LogDir(), "kube-apiserver.log"))
}

// kubectlApply runs `kubectl apply -f -` as the lab's admin.
func (c Config) kubectlApply(ctx context.Context, manifest []byte) error {
	cmd := exec.CommandContext(ctx, c.kubeBin("kubectl"), "--kubeconfig", c.Kubeconfig("admin"), "apply", "-f", "-")
	cmd.Stdin = bytes.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %w\n%s", err, out)
	}
	return nil
}

var (
	kindLine = regexp.MustCompile(`(?m)^kind:\s*(\S+)`)
	nameLine = regexp.MustCompile(`(?m)^  name:\s*(\S+)`)
)

// manifestWithout returns the documents of a multi-document manifest except those
// whose kind, or "kind/name", is one of drop.
func manifestWithout(manifest []byte, drop ...string) ([]byte, error) {
	var out bytes.Buffer
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(manifest), -1) {
		m := kindLine.FindStringSubmatch(doc)
		if m == nil {
			continue
		}
		name := ""
		if n := nameLine.FindStringSubmatch(doc); n != nil {
			name = n[1]
		}
		skip := false
		for _, d := range drop {
			skip = skip || d == m[1] || d == m[1]+"/"+name
		}
		if !skip {
			out.WriteString(doc)
			out.WriteString("\n---\n")
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("deploy/fjord.yaml has no documents")
	}
	return out.Bytes(), nil
}

// waitKubeNodes waits until every node is registered and Ready, has a pod CIDR and
// carries the annotations its fjord agent publishes.
func (c Config) waitKubeNodes(ctx context.Context, client kubernetes.Interface) error {
	var missing []string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		missing = missing[:0]
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		have := map[string]*corev1.Node{}
		if err == nil {
			for i := range list.Items {
				have[list.Items[i].Name] = &list.Items[i]
			}
		}
		for _, name := range c.NodeNames() {
			n := have[name]
			switch {
			case n == nil:
				missing = append(missing, name+": not registered")
			case n.Spec.PodCIDR == "":
				missing = append(missing, name+": no pod CIDR")
			case n.Annotations[nodereg.AnnotationNodeIP] == "":
				missing = append(missing, name+": agent has not registered")
			case !nodeReady(n):
				missing = append(missing, name+": not Ready")
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("nodes not ready: %s (see the logs in %s)", strings.Join(missing, "; "), c.LogDir())
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitKubePodsReady waits until want pods matching selector are Ready.
func waitKubePodsReady(ctx context.Context, client kubernetes.Interface, ns, selector string, want int) error {
	ready := 0
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		ready = 0
		if err == nil {
			for i := range list.Items {
				if podReady(&list.Items[i]) {
					ready++
				}
			}
		}
		if ready >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%d of %d pods %s Ready", ready, want, selector)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil
		}
	}
	return false
}

// waitIngressStatus waits until the Ingress's status carries ip.
func waitIngressStatus(ctx context.Context, client kubernetes.Interface, ns, name, ip string) error {
	var last []networkingv1.IngressLoadBalancerIngress
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		ing, err := client.NetworkingV1().Ingresses(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = ing.Status.LoadBalancer.Ingress
			for _, lb := range last {
				if lb.IP == ip {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("Ingress %s/%s status is %v, want %s", ns, name, last, ip)
}

// kubeEchoPods lists the demo's running pods for the connectivity check.
func (c Config) kubeEchoPods(ctx context.Context, client kubernetes.Interface) ([]EchoTarget, error) {
	list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
	if err != nil {
		return nil, err
	}
	var out []EchoTarget
	for i := range list.Items {
		p := &list.Items[i]
		if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		netns := "/run/netns/" + c.PodNetns(p.Namespace, p.Name)
		if c.Runtime == RuntimeContainerd {
			if netns, err = c.RealPodNetns(p); err != nil {
				return nil, err
			}
		}
		out = append(out, EchoTarget{Name: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Netns: netns})
	}
	return out, nil
}

// PodNetns is the network namespace name the lab's runtime gives a pod.
func (c Config) PodNetns(namespace, name string) string {
	return c.PodNSPrefix() + namespace + "-" + name
}

// haveKubeBinaries checks that KubeBin holds every program the lab runs.
func (c Config) haveKubeBinaries() error {
	for _, b := range KubeBinaries {
		if fi, err := os.Stat(c.kubeBin(b)); err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s not found in %s (the Kubernetes build provides it)", b, c.KubeBin)
		}
	}
	return nil
}

// NodeIndex returns i for node name "n<i>" of this lab.
func (c Config) NodeIndex(name string) (int, error) {
	for i := 1; i <= c.Nodes; i++ {
		if c.NodeName(i) == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("lab %q has no node %q", c.Name, name)
}

// AdminClient is a client of the Kubernetes lab's API server, as its admin.
func (c Config) AdminClient() (kubernetes.Interface, error) {
	rc, err := kubeclient.Config(c.Kubeconfig("admin"))
	if err != nil {
		return nil, err
	}
	return kubeclient.New(rc, "lab")
}

// KubeEchoPods lists the Kubernetes lab's running echo pods.
func (c Config) KubeEchoPods(ctx context.Context) ([]EchoTarget, error) {
	client, err := c.AdminClient()
	if err != nil {
		return nil, err
	}
	return c.kubeEchoPods(ctx, client)
}

// servicesEndpointManifest tells fjord's agents where the API server really is
// (deploy/fjord.yaml's kubernetes-services-endpoint ConfigMap).
func (c Config) servicesEndpointManifest() string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: kubernetes-services-endpoint, namespace: fjord-system}
data: {KUBERNETES_SERVICE_HOST: "%s", KUBERNETES_SERVICE_PORT: "%d"}
`, c.APIServerAddr().Addr(), c.APIServerAddr().Port())
}
