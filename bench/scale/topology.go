package main

// The namespaces, the control plane in fjord-bsc-api, the echo backends and the
// agent in fjord-bsc-node.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/kubecp"
	"github.com/fjord-net/fjord/internal/nodereg"
)

func (b *bench) ip(ctx context.Context, args ...string) error {
	_, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), "ip", args...)
	return err
}

func (b *bench) addNS(ctx context.Context, name string) error {
	_ = b.ip(ctx, "netns", "delete", name) // a leftover of a killed run
	if err := b.ip(ctx, "netns", "add", name); err != nil {
		return err
	}
	b.mu.Lock()
	b.namespaces = append(b.namespaces, name)
	b.mu.Unlock()
	return b.ip(ctx, "-n", name, "link", "set", "lo", "up")
}

// topology makes the namespaces and links:
//
//	fjord-bsc-api [bsc-node 198.18.181.1/24] ---- [eth0 198.18.181.2/24] fjord-bsc-node
//	fjord-bsc-node [bsc-a 10.128.0.1/32] ---- [eth0 10.128.0.10/32] fjord-bsc-a (and -b)
func (b *bench) topology(ctx context.Context) error {
	for _, ns := range []string{nsAPI, nsNode, nsPrefix + "-a", nsPrefix + "-b"} {
		if err := b.addNS(ctx, ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"link", "add", "bsc-node", "netns", nsAPI, "type", "veth", "peer", "name", "eth0", "netns", nsNode},
		{"-n", nsAPI, "addr", "add", apiAddr.String() + "/24", "dev", "bsc-node"},
		{"-n", nsAPI, "link", "set", "bsc-node", "up"},
		{"-n", nsNode, "addr", "add", nodeAddr.String() + "/24", "dev", "eth0"},
		{"-n", nsNode, "link", "set", "eth0", "up"},
	}
	for _, name := range []string{"a", "b"} {
		ns, host, ip := nsPrefix+"-"+name, "bsc-"+name, backends[name].String()
		steps = append(steps,
			[]string{"link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", host, "netns", nsNode},
			[]string{"-n", ns, "addr", "add", ip + "/32", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "route", "add", gateway.String(), "dev", "eth0", "scope", "link"},
			[]string{"-n", ns, "route", "add", "default", "via", gateway.String(), "dev", "eth0"},
			[]string{"-n", nsNode, "addr", "add", gateway.String() + "/32", "dev", host},
			[]string{"-n", nsNode, "link", "set", host, "up"},
			[]string{"-n", nsNode, "route", "add", ip + "/32", "dev", host},
		)
	}
	for _, s := range steps {
		if err := b.ip(ctx, s...); err != nil {
			return err
		}
	}
	if _, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), "ip", "netns", "exec", nsNode,
		"sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"); err != nil {
		return err
	}
	var err error
	if b.api, err = benchkit.NewNSWorker(nsAPI); err != nil {
		return err
	}
	if b.node, err = benchkit.NewNSWorker(nsNode); err != nil {
		return err
	}
	b.workers = append(b.workers, b.api, b.node)
	for name := range backends {
		if _, err := b.spawn("echo-"+name, nsPrefix+"-"+name, b.fjord, "echo", "--pod", "scale-"+name, "--namespace", namespace,
			"--node", agentNode, "--http", fmt.Sprint(backendPort), "--tcp", "0", "--udp", "0"); err != nil {
			return err
		}
	}
	return nil
}

// dialIn dials from inside a namespace through its worker.
func dialIn(w *benchkit.NSWorker) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		w.Run(func() { c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr) })
		return c, err
	}
}

// controlPlane starts etcd (in this process) and kube-apiserver in fjord-bsc-api.
func (b *bench) controlPlane(ctx context.Context, bins kubebuild.Binaries) error {
	dir := filepath.Join(b.tmp, "cp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b.logf("starting kube-apiserver in %s on %v:%d", nsAPI, apiAddr, apiPort)
	cp, err := kubecp.Start(ctx, kubecp.Config{
		Dir: dir, Binaries: bins, Address: netip.AddrPortFrom(apiAddr, apiPort), ServiceCIDR: serviceCIDR,
		Users: map[string][]string{admin: {"system:masters"}, agentUser: {"system:masters"}},
		Command: func(bin string, args ...string) *exec.Cmd {
			return exec.Command("ip", append([]string{"netns", "exec", nsAPI, bin}, args...)...)
		},
		Dial: dialIn(b.api),
	})
	if err != nil {
		return err
	}
	b.cp = cp
	cfg, err := cp.RESTConfig(admin)
	if err != nil {
		return err
	}
	// The load generator writes hundreds of objects a second: no client-side limit
	// (system:masters is exempt from the server's priority and fairness too).
	cfg.QPS, cfg.Burst = 5000, 10000
	if b.admin, err = kubeclient.New(cfg, "bench-scale"); err != nil {
		return err
	}
	kc, err := cp.Kubeconfig(agentUser)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.tmp, "agent.kubeconfig"), kc, 0o600)
}

// startAgent starts `fjord agent --kubeconfig` in fjord-bsc-node and waits until its
// service proxy has programmed the kernel (its Node's FjordServiceProxyReady).
func (b *bench) startAgent(ctx context.Context) error {
	dir := filepath.Join(b.tmp, "agent")
	p, err := b.spawn("agent", nsNode, b.fjord, "agent", "--kubeconfig", filepath.Join(b.tmp, "agent.kubeconfig"),
		"--node-name", agentNode, "--iface", "eth0", "--cluster-cidr", clusterCIDR.String(), "--service-cidr", serviceCIDR.String(),
		"--run-dir", filepath.Join(dir, "run"), "--cni-conf-dir", "", "--state-dir", dir, "--debug-addr", debugAddr, "--pod-cidr-wait", "0s")
	if err != nil {
		return err
	}
	b.agent, b.agentStart = p, time.Now()
	return poll(ctx, 2*time.Minute, 200*time.Millisecond, "the agent programs its node", func() (bool, error) {
		if !p.Alive() {
			return false, fmt.Errorf("the agent exited:\n%s", p.LogTail(15))
		}
		n, err := b.admin.CoreV1().Nodes().Get(ctx, agentNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if n.Annotations[nodereg.AnnotationNodeIP] == "" {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == "FjordServiceProxyReady" && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// peerRoutes counts the agent's routes to other nodes' pod CIDRs (over its vxlan
// device).
func (b *bench) peerRoutes(ctx context.Context) (int, error) {
	out, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), "ip", "-n", nsNode, "route", "show", "dev", "fjord.1")
	if err != nil {
		return 0, err
	}
	return strings.Count(string(out), "\n"), nil
}
