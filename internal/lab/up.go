package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/store"
)

// Up brings the lab up, printing progress to out. On failure it tears down what it
// made, so a failed Up leaves nothing behind.
func Up(ctx context.Context, c Config, out io.Writer) (err error) {
	if err := c.Validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the lab creates network namespaces and must run as root")
	}
	if _, err := os.Stat(c.configPath()); err == nil || len(c.labNamespaces()) > 0 || len(c.labProcesses()) > 0 {
		if c.healthy(ctx) {
			return fmt.Errorf("lab %q is already up (see 'fjord lab status'; 'fjord lab down' removes it)", c.Name)
		}
		fmt.Fprintf(out, "• removing leftovers of an earlier lab %q\n", c.Name)
		if err := Down(c.RunRoot, c.Name, io.Discard); err != nil {
			return fmt.Errorf("cleaning leftovers: %w", err)
		}
	}
	if err := c.checkSubnetFree(); err != nil {
		return err
	}
	if err := c.preflight(); err != nil {
		return err
	}
	if err := c.racksPreflight(); err != nil {
		return err
	}
	if c.Kubernetes {
		if err := c.haveKubeBinaries(); err != nil {
			return err
		}
		if c.Runtime == RuntimeContainerd {
			if err := c.preflightRealNodes(); err != nil {
				return err
			}
		}
	}
	var proxyConfig []byte
	if c.ProxyConfig != "" {
		var err error
		if proxyConfig, err = os.ReadFile(c.ProxyConfig); err != nil {
			return fmt.Errorf("--proxy-config: %w", err)
		}
		if _, err := proxyconfig.Parse(proxyConfig); err != nil {
			return fmt.Errorf("--proxy-config %s: %w", c.ProxyConfig, err)
		}
	}
	start := time.Now()
	defer func() {
		if err != nil {
			fmt.Fprintf(out, "✗ %v\n• cleaning up; logs kept in %s\n", err, c.keepLogs())
			_ = Down(c.RunRoot, c.Name, io.Discard)
		}
	}()
	step := func(msg string, f func() error) error {
		fmt.Fprintf(out, "• %s ... ", msg)
		t := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(out, "failed")
			return err
		}
		fmt.Fprintf(out, "ok (%s)\n", time.Since(t).Round(10*time.Millisecond))
		return nil
	}
	if err := os.MkdirAll(c.CNIBinDir(), 0o755); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	if proxyConfig != nil {
		if err := os.WriteFile(c.proxyConfigPath(), proxyConfig, 0o644); err != nil {
			return err
		}
	}
	if err := os.Symlink(c.cniBinary(), filepath.Join(c.CNIBinDir(), "fjord-cni")); err != nil {
		return err
	}
	if err := os.Symlink(c.Binary, filepath.Join(c.CNIBinDir(), "fjord")); err != nil {
		return err
	}
	if err := step(fmt.Sprintf("underlay %v (MTU %d) and host link %s", c.Subnet, c.UnderlayMTU, c.HostLink()), c.buildUnderlay); err != nil {
		return err
	}
	if err := step(fmt.Sprintf("%d node namespaces", c.Nodes), func() error {
		for i := 1; i <= c.Nodes; i++ {
			if err := c.buildNode(i); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if c.Kubernetes {
		if err := c.upKubernetes(ctx, out, step); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nlab %q is up in %s.\n", c.Name, time.Since(start).Round(100*time.Millisecond))
		printNextKubernetes(out, c)
		return nil
	}
	var st *store.Store
	var closeStore func()
	if err := step("embedded etcd on "+c.EtcdSocket(), func() error {
		if _, err := c.spawn("etcd", "", "etcd", "--state-dir", c.StateDir()); err != nil {
			return err
		}
		st, closeStore, err = c.waitStore(ctx)
		return err
	}); err != nil {
		return err
	}
	defer closeStore()
	if c.racked() {
		if err := step(fmt.Sprintf("router %s (%s) joining %d racks; BGP objects", c.RouterNS(), c.routerName(), c.Racks), func() error {
			return c.upRacks(ctx, st)
		}); err != nil {
			return err
		}
	}
	if err := step(fmt.Sprintf("store relay for the nodes on %v", c.StoreRelayAddr()), func() error {
		if _, err := c.spawn("store-relay", "", "lab", "store-relay", "--lab", c.Name, "--run-root", c.RunRoot); err != nil {
			return err
		}
		return c.waitStoreRelay(ctx)
	}); err != nil {
		return err
	}
	if err := step(fmt.Sprintf("%d agents (%s mode)", c.Nodes, c.Mode), func() error {
		for i := 1; i <= c.Nodes; i++ {
			if _, err := c.spawn("agent-"+c.NodeName(i), c.nodeNSPath(i), c.agentArgs(i)...); err != nil {
				return err
			}
		}
		return c.waitNodesReady(ctx, st)
	}); err != nil {
		return err
	}
	if c.Mode == podnet.ModeBGP {
		if err := step("BGP sessions established, every pod CIDR learned everywhere", func() error { return c.waitBGP(ctx, st) }); err != nil {
			return err
		}
	}
	if err := step(fmt.Sprintf("ingress on n1 (http://%v/, https://%v/)", c.NodeAddr(1), c.NodeAddr(1)), func() error {
		_, err := c.spawn("ingress-n1", c.nodeNSPath(1), c.ingressArgs()...)
		return err
	}); err != nil {
		return err
	}
	if err := step("pod runtimes", func() error {
		for i := 1; i <= c.Nodes; i++ {
			if _, err := c.spawn("kubelet-"+c.NodeName(i), c.nodeNSPath(i), c.kubeletArgs(i)...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if c.Demo {
		if err := step("demo workload: one echo pod per node, Service echo, Ingress echo", func() error {
			demo := DemoObjects(c)
			if err := objects.Admit(demo...); err != nil {
				return err
			}
			if _, err := st.Apply(ctx, demo); err != nil {
				return err
			}
			return WaitPodsRunning(ctx, st, c.NodeNames())
		}); err != nil {
			return err
		}
		// Pods run before their readiness probes pass and their endpoints are
		// published; the printed `curl` must work the moment the lab says it is up.
		if err := step(fmt.Sprintf("ingress serves the demo (http://%v/)", c.NodeAddr(1)), func() error {
			return WaitHTTP(ctx, fmt.Sprintf("http://%v/", c.NodeAddr(1)), 30*time.Second)
		}); err != nil {
			return err
		}
		fmt.Fprintln(out)
		if c.Nodes < 2 {
			fmt.Fprintln(out, "(one node: no pod-to-pod matrix to check)")
		} else {
			pods, err := StoreEchoPods(ctx, st)
			if err != nil {
				return err
			}
			res, err := CheckPods(ctx, pods)
			PrintMatrix(out, res)
			if err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "\nlab %q is up in %s.\n", c.Name, time.Since(start).Round(100*time.Millisecond))
	printNext(out, c)
	return nil
}

// LeaseTTL is the lab agents' --lease-ttl: a node cut off is out of every Service
// within about 5 s (the Lease runs out 3-4 s after the last renewal, then the endpoints
// controller and the service proxies react), while a 1 s hiccup, renewals every second
// held up by it and a TCP retransmission, stays well inside it.
const LeaseTTL = 4 * time.Second

func (c Config) agentArgs(i int) []string {
	dir := c.NodeDir(i)
	args := []string{"agent", "--node-name", c.NodeName(i), "--iface", "eth0",
		"--etcd-endpoints", c.nodeStoreEndpoint(),
		"--mode", string(c.Mode), "--cluster-cidr", c.ClusterCIDR.String(),
		"--run-dir", filepath.Join(dir, "run"), "--cni-conf-dir", filepath.Join(dir, "cni", "net.d"),
		"--cni-data-dir", filepath.Join(dir, "cni", "networks"), "--state-dir", dir, "--cni-version", "1.1.0", "--lease-ttl", LeaseTTL.String()}
	if c.PodMTU > 0 {
		args = append(args, "--mtu", strconv.Itoa(c.PodMTU))
	}
	if c.ProxyConfig != "" {
		args = append(args, "--config", c.proxyConfigPath())
	}
	return append(args, c.bgpAgentArgs(i)...)
}

// ingressArgs runs the ingress proxy on node 1, on the standard ports of that node's
// address (which the host reaches through its lab link).
func (c Config) ingressArgs() []string {
	// Bound to the node's address, not the wildcard: service IPs are local on nodes,
	// and must never reach a node-local listener.
	addr := c.NodeAddr(1).String()
	return []string{"ingress", "--http-addr", addr + ":80", "--https-addr", addr + ":443", "--metrics-addr", addr + ":10254",
		"--access-log", filepath.Join(c.LogDir(), "ingress-access.log"),
		"--etcd-endpoints", c.nodeStoreEndpoint()}
}

func (c Config) kubeletArgs(i int) []string {
	return []string{"lab", "kubelet", "--node-name", c.NodeName(i), "--lab", c.Name, "--run-root", c.RunRoot,
		"--etcd-endpoints", c.nodeStoreEndpoint()}
}

// NodeNames lists the lab's node names.
func (c Config) NodeNames() []string {
	var out []string
	for i := 1; i <= c.Nodes; i++ {
		out = append(out, c.NodeName(i))
	}
	return out
}

// cniBinary is the plugin the lab's runtime execs: the slim fjord-cni build next to the
// fjord binary when there is one (it starts faster), else the fjord binary itself.
func (c Config) cniBinary() string {
	slim := filepath.Join(filepath.Dir(c.Binary), "fjord-cni")
	if fi, err := os.Stat(slim); err == nil && fi.Mode().IsRegular() {
		return slim
	}
	return c.Binary
}

// preflight checks what the lab needs from the machine and says what is missing.
func (c Config) preflight() error {
	for _, dir := range c.CNIPath()[1:] {
		if _, err := os.Stat(filepath.Join(dir, "portmap")); err == nil {
			return nil
		}
	}
	return fmt.Errorf("the reference CNI plugin 'portmap' was not found in %v: run 'make lab' (it installs it) or 'go install github.com/containernetworking/plugins/plugins/meta/portmap@v1.10.0' into /usr/local/lib/fjord/cni", c.CNIPath()[1:])
}

// waitStore waits for the lab's etcd to answer.
func (c Config) waitStore(ctx context.Context) (*store.Store, func(), error) {
	var lastErr error
	for i := 0; i < 300; i++ {
		if _, err := os.Stat(c.EtcdSocket()); err == nil {
			cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{etcdserver.SocketEndpoint(c.EtcdSocket())}, DialTimeout: 2 * time.Second})
			if err == nil {
				return store.New(cli, ""), func() { cli.Close() }, nil
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, nil, fmt.Errorf("etcd did not come up (last error %v; see %s)", lastErr, filepath.Join(c.LogDir(), "etcd.log"))
}

// waitStoreRelay waits until the store relay accepts connections (it closes this one
// at once: the root namespace is not a node).
func (c Config) waitStoreRelay(ctx context.Context) error {
	var d net.Dialer
	var err error
	for i := 0; i < 300 && ctx.Err() == nil; i++ {
		var conn net.Conn
		if conn, err = d.DialContext(ctx, "tcp", c.StoreRelayAddr().String()); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the store relay does not listen on %v (last error %v; see %s)", c.StoreRelayAddr(), err, filepath.Join(c.LogDir(), "store-relay.log"))
}

// healthy reports whether the lab's store answers.
func (c Config) healthy(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cli, err := store.Connect(cctx, store.ClientConfig{Endpoints: []string{etcdserver.SocketEndpoint(c.EtcdSocket())}, DialTimeout: time.Second})
	if err != nil {
		return false
	}
	cli.Close()
	return true
}

// waitNodesReady waits until every node has a pod CIDR and a live lease.
func (c Config) waitNodesReady(ctx context.Context, st *store.Store) error {
	nk, _ := st.Kinds().ByName("Node")
	lk, _ := st.Kinds().ByName("Lease")
	for i := 0; i < 600; i++ {
		ready := 0
		for _, n := range c.NodeNames() {
			o, err := st.Get(ctx, nk, "", n)
			if err != nil || o.(*corev1.Node).Spec.PodCIDR == "" {
				continue
			}
			if _, err := st.Get(ctx, lk, "kube-node-lease", n); err == nil {
				ready++
			}
		}
		if ready == c.Nodes {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nodes did not become ready; see the agent logs in %s", c.LogDir())
}

// WaitPodsRunning waits until every pod on the given nodes is Running with an IP.
func WaitPodsRunning(ctx context.Context, st *store.Store, nodes []string) error {
	pk, _ := st.Kinds().ByName("Pod")
	onNode := map[string]bool{}
	for _, n := range nodes {
		onNode[n] = true
	}
	var pending []string
	for i := 0; i < 600; i++ {
		list, _, err := st.List(ctx, pk, "")
		pending = pending[:0]
		if err == nil {
			for _, o := range list {
				p := o.(*corev1.Pod)
				if onNode[p.Spec.NodeName] && (p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "") {
					pending = append(pending, p.Namespace+"/"+p.Name)
				}
			}
			if len(pending) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("pods not running: %v", pending)
}

// keepLogs moves the logs of a failed Up out of the state dir (which Down removes), for
// diagnosis, and returns where they went.
func (c Config) keepLogs() string {
	dst := filepath.Join(os.TempDir(), "fjord-"+c.Name+"-failed-logs")
	_ = os.RemoveAll(dst)
	if err := os.Rename(c.LogDir(), dst); err != nil {
		return c.LogDir()
	}
	return dst
}
