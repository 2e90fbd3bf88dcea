package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// kubeSide is real kube-apiserver and kube-proxy, in namespaces this benchmark creates:
//
//	root ns:          fjord etcd on a unix socket (a file, reachable from every namespace)
//	fjord-bsk-api:    kube-apiserver, one veth to each kube-proxy node
//	fjord-bsk-nft:    kube-proxy --proxy-mode=nftables (node "kbs-nft"), 198.18.62.2
//	fjord-bsk-ipt:    kube-proxy --proxy-mode=iptables (node "kbs-ipt"), 198.18.63.2
//	fjord-bsk-K-P:    per node, a client and four echo backends, each its own namespace
//	                  with a routed veth to the node, the same addresses, gateway and MTU
//	                  as the fjord lab's pods
//
// Both nodes see the same Services and EndpointSlices; the backends are the same
// server as the fjord lab's backend pods (this program with -serve).
type kubeSide struct {
	b          *bench
	bin        string
	dir        string // keys, tokens, kubeconfigs, etcd data
	token      string
	etcd       *benchkit.Proc
	apiserver  *benchkit.Proc
	apiWorker  *nsWorker
	http       *http.Client
	namespaces []string // created, for cleanup
	nodes      []*kubeNode
	version    string
}

const kubePrefix = "fjord-bsk"

type kubeNode struct {
	k         *kubeSide
	Key, Mode string // "nft"/"nftables", "ipt"/"iptables"
	ns        string
	apiAddr   string
	nodeAddr  string
	proxy     *benchkit.Proc
	worker    *nsWorker // in the client namespace
	backends  []*benchkit.Proc
	starts    int
}

func (n *kubeNode) nodeName() string      { return "kbs-" + n.Key }
func (n *kubeNode) podNS(p string) string { return n.ns + "-" + p }

const markerEnv = "FJORD_BENCH_SERVICES"

// startProc starts a process of this benchmark (benchkit.Proc: its own process group,
// killed with this process if it dies), marked in its environment, run from /.
func (b *bench) startProc(name, logPath string, argv ...string) (*benchkit.Proc, error) {
	p, err := benchkit.StartProc(name, logPath, func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), markerEnv+"=1")
		cmd.Dir = "/"
	}, argv...)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

func (k *kubeSide) binary(name string) string { return filepath.Join(k.bin, name) }

// available says why the kube-proxy columns cannot be measured ("" = they can).
func kubeAvailable(bin string) string {
	for _, n := range []string{"kube-apiserver", "kube-proxy"} {
		if !fileExists(filepath.Join(bin, n)) {
			return fmt.Sprintf("%s not found in %s (-kube-bin)", n, bin)
		}
	}
	return ""
}

func (k *kubeSide) ip(ctx context.Context, args ...string) error {
	_, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), "ip", args...)
	return err
}

func (k *kubeSide) addNS(ctx context.Context, name string) error {
	if err := k.ip(ctx, "netns", "add", name); err != nil {
		return err
	}
	k.namespaces = append(k.namespaces, name)
	return k.ip(ctx, "-n", name, "link", "set", "lo", "up")
}

func (k *kubeSide) sysctl(ctx context.Context, ns string, kv ...string) error {
	_, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), "ip", append([]string{"netns", "exec", ns, "sysctl", "-q", "-w"}, kv...)...)
	return err
}

// up builds the topology, starts etcd and kube-apiserver, creates the Nodes, and the
// echo backends. f gives the pod addresses, gateway and MTU to copy.
func (k *kubeSide) up(ctx context.Context, f *fjordSide) error {
	b := k.b
	if out, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), k.binary("kube-proxy"), "--version"); err == nil {
		k.version = strings.TrimSpace(string(out))
	}
	k.dir = filepath.Join(b.tmp, "kube")
	if err := os.MkdirAll(filepath.Join(k.dir, "certs"), 0o700); err != nil {
		return err
	}
	if err := k.writeCredentials(); err != nil {
		return err
	}
	gw, mtu, err := podGateway(ctx, f.client.Netns)
	if err != nil {
		return err
	}
	// Namespaces and links.
	api := kubePrefix + "-api"
	if err := k.addNS(ctx, api); err != nil {
		return err
	}
	k.nodes = []*kubeNode{
		{k: k, Key: "nft", Mode: "nftables", ns: kubePrefix + "-nft", apiAddr: "198.18.62.1", nodeAddr: "198.18.62.2"},
		{k: k, Key: "ipt", Mode: "iptables", ns: kubePrefix + "-ipt", apiAddr: "198.18.63.1", nodeAddr: "198.18.63.2"},
	}
	pods := map[string]pod{"client": f.client}
	for _, e := range echoNames {
		pods[e] = f.echo[e]
	}
	for _, n := range k.nodes {
		if err := k.addNS(ctx, n.ns); err != nil {
			return err
		}
		link := "bsk-" + n.Key
		steps := [][]string{
			{"link", "add", link, "netns", api, "type", "veth", "peer", "name", "eth0", "netns", n.ns},
			{"-n", api, "addr", "add", n.apiAddr + "/24", "dev", link},
			{"-n", api, "link", "set", link, "up"},
			{"-n", n.ns, "addr", "add", n.nodeAddr + "/24", "dev", "eth0"},
			{"-n", n.ns, "link", "set", "eth0", "up"},
		}
		for _, s := range steps {
			if err := k.ip(ctx, s...); err != nil {
				return err
			}
		}
		if err := k.sysctl(ctx, n.ns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"); err != nil {
			return err
		}
		for _, p := range append([]string{"client"}, echoNames...) {
			ns, host := n.podNS(p), "v"+p
			if err := k.addNS(ctx, ns); err != nil {
				return err
			}
			ip := pods[p].IP
			steps := [][]string{
				{"link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", host, "netns", n.ns},
				{"-n", ns, "link", "set", "eth0", "mtu", mtu, "up"},
				{"-n", ns, "addr", "add", ip + "/32", "dev", "eth0"},
				{"-n", ns, "route", "add", gw, "dev", "eth0", "scope", "link"},
				{"-n", ns, "route", "add", "default", "via", gw, "dev", "eth0"},
				{"-n", n.ns, "link", "set", host, "mtu", mtu, "up"},
				{"-n", n.ns, "addr", "add", gw + "/32", "dev", host},
				{"-n", n.ns, "route", "add", ip + "/32", "dev", host},
			}
			for _, s := range steps {
				if err := k.ip(ctx, s...); err != nil {
					return err
				}
			}
		}
		if n.worker, err = newNSWorker(n.podNS("client")); err != nil {
			return err
		}
	}
	// etcd (root namespace, unix socket only) and kube-apiserver.
	etcdDir := filepath.Join(k.dir, "etcd")
	if k.etcd, err = b.startProc("etcd", filepath.Join(b.tmp, "kube-etcd.log"), b.fjord, "etcd", "--state-dir", etcdDir); err != nil {
		return err
	}
	sock := filepath.Join(etcdDir, "etcd.sock")
	for i := 0; i < 300 && !fileExists(sock); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !fileExists(sock) {
		return fmt.Errorf("etcd for kube-apiserver: no socket %s after 15 s", sock)
	}
	if k.apiWorker, err = newNSWorker(api); err != nil {
		return err
	}
	k.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			k.apiWorker.Run(func() { c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr) })
			return c, err
		},
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // self-signed, in a namespace of ours
		MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64, ForceAttemptHTTP2: false,
	}}
	b.logf("kube: starting kube-apiserver (%s)", k.version)
	t0 := time.Now()
	if k.apiserver, err = b.startProc("kube-apiserver", filepath.Join(b.tmp, "kube-apiserver.log"),
		"ip", "netns", "exec", api, k.binary("kube-apiserver"),
		"--etcd-servers=unix://"+sock,
		"--bind-address=0.0.0.0", "--secure-port=6443", "--advertise-address="+k.nodes[0].apiAddr,
		"--cert-dir="+filepath.Join(k.dir, "certs"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(k.dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(k.dir, "sa.key"),
		"--token-auth-file="+filepath.Join(k.dir, "tokens.csv"), "--anonymous-auth=false",
		"--authorization-mode=AlwaysAllow"); err != nil {
		return err
	}
	if err := k.waitAPI(ctx); err != nil {
		return err
	}
	b.logf("kube: apiserver ready after %.1f s", time.Since(t0).Seconds())
	for _, n := range k.nodes {
		if err := k.do(ctx, "POST", "/api/v1/nodes", "application/json",
			mustJSON(jsonObj{"apiVersion": "v1", "kind": "Node", "metadata": jsonObj{"name": n.nodeName()}}), true); err != nil {
			return err
		}
		status := jsonObj{"status": jsonObj{"addresses": []jsonObj{{"type": "InternalIP", "address": n.nodeAddr}, {"type": "Hostname", "address": n.nodeName()}}}}
		if err := k.do(ctx, "PATCH", "/api/v1/nodes/"+n.nodeName()+"/status", "application/merge-patch+json", mustJSON(status), false); err != nil {
			return err
		}
		if err := k.writeKubeconfig(n); err != nil {
			return err
		}
		for _, e := range echoNames {
			p, err := b.startProc("echo-"+n.Key+"-"+e, filepath.Join(b.tmp, "echo-"+n.Key+"-"+e+".log"),
				"ip", "netns", "exec", n.podNS(e), b.self, "-serve", fmt.Sprintf(":%d", backendPort), "-serve-pod", podName(e))
			if err != nil {
				return err
			}
			n.backends = append(n.backends, p)
		}
	}
	return nil
}

// podGateway reads a fjord pod's default gateway and MTU, so the kube-proxy nodes'
// pods are wired the same way.
func podGateway(ctx context.Context, netnsPath string) (gw, mtu string, err error) {
	ns := filepath.Base(netnsPath)
	out, err := benchkit.RunCmd(ctx, 10*time.Second, os.Environ(), "ip", "-n", ns, "-j", "route", "show", "default")
	if err != nil {
		return "", "", err
	}
	var routes []struct {
		Gateway string `json:"gateway"`
	}
	if err := json.Unmarshal(out, &routes); err != nil || len(routes) == 0 || routes[0].Gateway == "" {
		return "", "", fmt.Errorf("pod %s: no default gateway in %q", ns, out)
	}
	m, err := benchkit.RunCmd(ctx, 10*time.Second, os.Environ(), "ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/mtu")
	if err != nil {
		return "", "", err
	}
	return routes[0].Gateway, strings.TrimSpace(string(m)), nil
}

func (k *kubeSide) writeCredentials() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	k.token = hex.EncodeToString(tok)
	// One token, in system:masters (exempt from API priority and fairness, so the
	// bulk creates are not throttled); authorization is AlwaysAllow anyway.
	return os.WriteFile(filepath.Join(k.dir, "tokens.csv"), []byte(k.token+",bench-admin,bench-admin,\"system:masters\"\n"), 0o600)
}

func (k *kubeSide) writeKubeconfig(n *kubeNode) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {server: "https://%s:6443", insecure-skip-tls-verify: true}
users:
- name: proxy
  user: {token: %s}
contexts:
- name: bench
  context: {cluster: bench, user: proxy}
current-context: bench
`, n.apiAddr, k.token)
	return os.WriteFile(filepath.Join(k.dir, n.Key+".kubeconfig"), []byte(cfg), 0o600)
}

func (k *kubeSide) waitAPI(ctx context.Context) error {
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !k.apiserver.Alive() {
			return fmt.Errorf("kube-apiserver exited; see %s", k.apiserver.Log)
		}
		last = k.do(ctx, "GET", "/readyz", "", nil, false)
		if last == nil {
			// The default namespace appears shortly after readiness.
			if last = k.do(ctx, "GET", "/api/v1/namespaces/default", "", nil, false); last == nil {
				return nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after 90 s: %v", last)
}

type apiError struct {
	code int
	body string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %.300s", e.code, e.body) }

// do sends one request; okConflict accepts 409 (the object exists already).
func (k *kubeSide) do(ctx context.Context, method, path, ctype string, body []byte, okConflict bool) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://127.0.0.1:6443"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 || (okConflict && resp.StatusCode == http.StatusConflict) {
		return nil
	}
	return &apiError{resp.StatusCode, string(data)}
}

// create posts objects with a few concurrent clients, retrying transient failures.
func (k *kubeSide) create(ctx context.Context, docs []kubeDoc) error {
	const workers = 12
	var next atomic.Int64
	var wg sync.WaitGroup
	var done atomic.Int64
	errc := make(chan error, workers)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t0 := time.Now()
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				d := done.Load()
				k.b.logf("kube-apiserver: %d of %d objects created (%.0f/s)", d, len(docs), float64(d)/time.Since(t0).Seconds())
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(docs) || ctx.Err() != nil {
					return
				}
				var err error
				for try := 0; try < 6; try++ {
					if err = k.do(ctx, "POST", docs[i].path, "application/json", docs[i].body, true); err == nil {
						break
					}
					var ae *apiError
					if errors.As(err, &ae) && ae.code < 500 && ae.code != 429 {
						break
					}
					time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
				}
				if err != nil {
					errc <- fmt.Errorf("creating %s: %w", docs[i].path, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

type kubeDoc struct {
	path string
	body []byte
}

func (k *kubeSide) setSlice(ctx context.Context, i int, backends []netip.Addr) error {
	patch := mustJSON(jsonObj{"endpoints": sliceEndpoints(backends)})
	return k.do(ctx, "PATCH", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/"+serviceName(i),
		"application/merge-patch+json", patch, false)
}

// startProxy starts kube-proxy in the node namespace.
func (n *kubeNode) startProxy() (int, error) {
	k := n.k
	n.starts++
	args := []string{"ip", "netns", "exec", n.ns, k.binary("kube-proxy"),
		"--proxy-mode=" + n.Mode, "--kubeconfig=" + filepath.Join(k.dir, n.Key+".kubeconfig"),
		"--hostname-override=" + n.nodeName(), "--cluster-cidr=10.244.0.0/16",
		"--nodeport-addresses=primary",
		// Leave the global conntrack sysctls alone (nf_conntrack_max is not per namespace).
		"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--healthz-bind-address=127.0.0.1:10256", "--metrics-bind-address=127.0.0.1:10249"}
	p, err := k.b.startProc("kube-proxy-"+n.Key, filepath.Join(k.b.tmp, fmt.Sprintf("kube-proxy-%s.log", n.Key)), args...)
	if err != nil {
		return 0, err
	}
	n.proxy = p
	return p.PID(), nil
}

func (n *kubeNode) stopProxy() error {
	if n.proxy != nil {
		n.proxy.Stop(10 * time.Second)
		n.proxy = nil
	}
	return nil
}

// flush removes every rule in the node namespace: kube-proxy's nftables tables, or the
// tables iptables-nft made for it (the namespace holds nothing else).
func (n *kubeNode) flush(ctx context.Context) error {
	_, err := benchkit.RunCmd(ctx, 5*time.Minute, os.Environ(), "ip", "netns", "exec", n.ns, "nft", "flush", "ruleset")
	return err
}

func (n *kubeNode) proxyPID() int {
	if n.proxy == nil || !n.proxy.Alive() {
		return 0
	}
	return n.proxy.PID()
}

func (k *kubeSide) down() {
	for _, n := range k.nodes {
		if n.worker != nil {
			n.worker.Close()
			n.worker = nil
		}
		n.stopProxy()
		for _, p := range n.backends {
			p.Stop(3 * time.Second)
		}
	}
	if k.apiserver != nil {
		k.apiserver.Stop(10 * time.Second)
	}
	if k.apiWorker != nil {
		k.apiWorker.Close()
		k.apiWorker = nil
	}
	if k.etcd != nil {
		k.etcd.Stop(10 * time.Second)
	}
	for i := len(k.namespaces) - 1; i >= 0; i-- {
		if _, err := benchkit.RunCmd(context.Background(), 30*time.Second, os.Environ(), "ip", "netns", "del", k.namespaces[i]); err != nil {
			k.b.logf("WARNING: %v", err)
		}
	}
	k.namespaces = nil
}
