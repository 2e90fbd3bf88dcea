package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/lab"
	"github.com/fjord-net/fjord/internal/labimages"
)

var nan = math.NaN()

// ---------------------------------------------------------------------------------
// Pod start-up: fjord against bridge + host-local, same kubelets and containerd

// refConfName sorts before fjord's 10-fjord.conflist: while it exists, containerd
// (max_conf_num 1) uses it.
const (
	refConfName = "00-kbench-ref.conflist"
	refNet      = "kbench-ref"
	fjordNet    = "fjord" // the network name in deploy/fjord.yaml's agent's conflist
	refBridge   = "kbr0"
)

// variant is one CNI configuration the nodes are switched to.
type variant struct {
	Key, Name, Net string // Net: the network name, which names its IPAM directory
	Rounds         []*podRound
}

// podRound is one Deployment's life under one variant.
type podRound struct {
	Round                int
	AllReady, FirstReady time.Duration // since kubectl apply started
	PodP50, PodP90       time.Duration // per pod: apply → Ready
	AllScheduled         time.Duration
	Delete               time.Duration // delete → every pod gone from the API and every address released
	Add, Del             criSample     // containerd's timers over the start, and over the deletion
	PerNode              map[string]int
	MemWith              []nodeMem // with the round's pods running (first measured round only)
}

func (b *bench) podStartup(ctx context.Context, res *results, refDir string) error {
	for _, p := range []string{"bridge", "host-local"} {
		if !isExecutable(filepath.Join(refDir, p)) {
			return fmt.Errorf("-ref-cni %s has no %s", refDir, p)
		}
	}
	if _, err := b.labDown(); err != nil {
		return err
	}
	b.logf("lab up %s for the pod benchmark (--no-demo --no-ingress)", *flagName)
	_, wall, _, err := b.runUp(ctx, nil, []string{"lab", "up", "--kubernetes", "--runtime", "containerd", "--name", *flagName,
		"--subnet", *flagSubnet, "--no-demo", "--no-ingress"})
	if err != nil {
		return err
	}
	res.PodLabUp = wall
	c, err := lab.Load("/run/fjord", *flagName)
	if err != nil {
		return err
	}
	client, err := c.AdminClient()
	if err != nil {
		return err
	}
	cidrs, err := podCIDRs(ctx, c, client)
	if err != nil {
		return err
	}
	for i := 1; i <= c.Nodes; i++ {
		for _, p := range []string{"bridge", "host-local"} {
			if err := copyExecutable(filepath.Join(refDir, p), filepath.Join(c.DiskDir(i), "cni", "bin", p)); err != nil {
				return err
			}
		}
	}
	res.RefNote = pluginNote(refDir)
	scr, err := newCRIScraper(c)
	if err != nil {
		return err
	}
	defer scr.close()
	if _, err := scr.scrape(ctx); err != nil {
		return fmt.Errorf("%w (is this lab's containerd serving metrics on %v? a lab started by an older fjord does not)", err, lab.RealNodeMetricsAddr)
	}
	if res.MemIdle, err = nodeMemory(c); err != nil {
		return err
	}

	variants := []*variant{
		{Key: "fjord", Name: "fjord", Net: fjordNet},
		{Key: "ref", Name: "bridge + host-local " + refVersion, Net: refNet},
	}
	res.Variants = variants
	res.CIDRs = cidrs
	b.logf("pod start-up: %d rounds (+1 warm-up) of a %d-pod Deployment, fjord and bridge+host-local alternated", *flagRounds, *flagPods)
	for r := 0; r <= *flagRounds; r++ {
		order := slices.Clone(variants)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, v := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pr, err := b.podRound(ctx, c, client, scr, v, cidrs, r)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", v.Name, r, err)
			}
			if r > 0 { // round 0 warms up
				v.Rounds = append(v.Rounds, pr)
			}
		}
	}
	// Back to fjord: the lab is left as the lab made it.
	return useCNI(c, variants[0], cidrs)
}

// podCIDRs reads every node's pod CIDR from its Node (the controller-manager's).
func podCIDRs(ctx context.Context, c lab.Config, client kubernetes.Interface) (map[int]netip.Prefix, error) {
	out := map[int]netip.Prefix{}
	for i := 1; i <= c.Nodes; i++ {
		n, err := client.CoreV1().Nodes().Get(ctx, c.NodeName(i), metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
			return nil, fmt.Errorf("node %s: pod CIDR %q is not an IPv4 prefix of /30 or wider", n.Name, n.Spec.PodCIDR)
		}
		out[i] = p.Masked()
	}
	return out, nil
}

// upperHalf is the upper half of an IPv4 prefix: the reference allocates there, so
// its pods never take an address fjord holds for a pod that outlives the rounds
// (CoreDNS, allocated first, low in the range), and the bridge's connected route
// (this half) is more specific than the agent's unreachable route for the whole
// pod CIDR.
func upperHalf(p netip.Prefix) netip.Prefix {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += 1 << (31 - p.Bits())
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits()+1)
}

// refConfList is the reference network: containerd's own example template (bridge
// with host-local on the node's pod CIDR, then portmap, as fjord chains portmap),
// without ipMasq (fjord masquerades once per node, not per pod).
func refConfList(cidr netip.Prefix) []byte {
	conf := map[string]any{
		"cniVersion": "1.0.0", "name": refNet,
		"plugins": []any{
			map[string]any{"type": "bridge", "bridge": refBridge, "isGateway": true, "ipMasq": false, "promiscMode": true,
				"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": upperHalf(cidr).String()}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}}}},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	return b
}

// useCNI switches every node to v: the reference's network list in front of fjord's,
// or removed.
func useCNI(c lab.Config, v *variant, cidrs map[int]netip.Prefix) error {
	for i := 1; i <= c.Nodes; i++ {
		p := filepath.Join(c.DiskDir(i), "cni", "net.d", refConfName)
		if v.Net == fjordNet {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		// A dot file is no network list to containerd; the rename makes it one at once.
		tmp := filepath.Join(filepath.Dir(p), ".kbench-tmp")
		if err := os.WriteFile(tmp, refConfList(cidrs[i]), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return nil
}

// allocated lists the addresses network net holds on node i (host-local's layout,
// which fjord's IPAM shares: one file per address).
func allocated(c lab.Config, i int, net string) map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(c.DiskDir(i), "cni", "lib", "networks", net))
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			out[e.Name()] = true
		}
	}
	return out
}

func deploymentManifest(name string, replicas int) []byte {
	return []byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: default, labels: {app: kbench}}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: kbench, run: %[1]s}}
  template:
    metadata: {labels: {app: kbench, run: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {run: %[1]s}}}
      containers:
      - name: pause
        image: %[3]s
        imagePullPolicy: Never
`, name, replicas, labimages.PauseTag))
}

// podRound runs one Deployment under variant v: switch, apply, wait for every pod
// Ready, check which plugin wired each pod, delete, wait until every address is
// released.
func (b *bench) podRound(ctx context.Context, c lab.Config, client kubernetes.Interface, scr *criScraper, v *variant, cidrs map[int]netip.Prefix, round int) (*podRound, error) {
	if err := useCNI(c, v, cidrs); err != nil {
		return nil, err
	}
	// containerd reloads on the directory's change (fsnotify); give it a moment.
	time.Sleep(2 * time.Second)
	baseline := map[int]map[string]bool{}
	for i := 1; i <= c.Nodes; i++ {
		baseline[i] = allocated(c, i, v.Net)
	}
	name := fmt.Sprintf("kbench-%s-%d", v.Key, round)
	selector := "run=" + name
	pods := client.CoreV1().Pods("default")
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	if len(list.Items) > 0 {
		return nil, fmt.Errorf("pods of %s exist before the round", name)
	}
	m0, err := scr.scrape(ctx)
	if err != nil {
		return nil, err
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return nil, err
	}
	defer func() { w.Stop() }()
	pr := &podRound{Round: round, PerNode: map[string]int{}}
	t0 := time.Now()
	if err := b.kubectl(ctx, c, deploymentManifest(name, *flagPods), "apply", "-f", "-"); err != nil {
		return nil, err
	}
	ready, sched, seen, err := waitPods(ctx, client, w, selector, *flagPods, t0)
	if err != nil {
		return nil, err
	}
	m1, err := scr.scrape(ctx)
	if err != nil {
		return nil, err
	}
	var lat []float64
	for _, d := range ready {
		lat = append(lat, float64(d))
		pr.AllReady = max(pr.AllReady, d)
		if pr.FirstReady == 0 || d < pr.FirstReady {
			pr.FirstReady = d
		}
	}
	for _, d := range sched {
		pr.AllScheduled = max(pr.AllScheduled, d)
	}
	pr.PodP50, pr.PodP90 = time.Duration(benchkit.Quantile(lat, 0.5)), time.Duration(benchkit.Quantile(lat, 0.9))
	// Every pod must have been wired by v's plugin: its address is in v's IPAM.
	for _, p := range seen {
		i, err := c.NodeIndex(p.Spec.NodeName)
		if err != nil {
			return nil, err
		}
		pr.PerNode[p.Spec.NodeName]++
		if !allocated(c, i, v.Net)[p.Status.PodIP] {
			return nil, fmt.Errorf("pod %s on %s has address %q, which network %q did not allocate: containerd did not use %s's configuration",
				p.Name, p.Spec.NodeName, p.Status.PodIP, v.Net, v.Name)
		}
		if v.Net == refNet && !upperHalf(cidrs[i]).Contains(netip.MustParseAddr(p.Status.PodIP)) {
			return nil, fmt.Errorf("pod %s: address %s outside the reference's range %v", p.Name, p.Status.PodIP, upperHalf(cidrs[i]))
		}
	}
	pr.Add = total(m1).sub(total(m0))
	if round == 1 { // the first measured round: memory with the pods running
		if pr.MemWith, err = nodeMemory(c); err != nil {
			return nil, err
		}
	}

	t1 := time.Now()
	if err := b.kubectl(ctx, c, nil, "delete", "deployment", name, "--wait=false"); err != nil {
		return nil, err
	}
	if err := waitGone(ctx, c, client, selector, v.Net, baseline); err != nil {
		return nil, err
	}
	pr.Delete = time.Since(t1)
	m2, err := scr.scrape(ctx)
	if err != nil {
		return nil, err
	}
	pr.Del = total(m2).sub(total(m1))
	tag := ""
	if round == 0 {
		tag = " (warm-up)"
	}
	b.logf("  %-26s round %d%s: all %d Ready in %5.2f s (pod p50 %5.2f s), CNI ADD %5.1f ms/pod, deleted in %5.2f s",
		v.Name, round, tag, *flagPods, pr.AllReady.Seconds(), pr.PodP50.Seconds(), 1000*pr.Add.mean("add"), pr.Delete.Seconds())
	return pr, nil
}

// kubectl runs the lab's kubectl as its admin, as a user would.
func (b *bench) kubectl(ctx context.Context, c lab.Config, stdin []byte, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.KubeBin, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig("admin")}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// waitPods follows the watch until want pods are Ready and returns, per pod, when it
// was first seen Ready and first seen bound to a node (since t0), and the pods.
func waitPods(ctx context.Context, client kubernetes.Interface, w watch.Interface, selector string, want int, t0 time.Time) (ready, sched map[string]time.Duration, seen map[string]*corev1.Pod, err error) {
	ready, sched, seen = map[string]time.Duration{}, map[string]time.Duration{}, map[string]*corev1.Pod{}
	defer func() { w.Stop() }() // the last watch (the caller stops the first)
	note := func(p *corev1.Pod) {
		seen[p.Name] = p
		if _, ok := sched[p.Name]; !ok && p.Spec.NodeName != "" {
			sched[p.Name] = time.Since(t0)
		}
		if _, ok := ready[p.Name]; !ok && podReady(p) {
			ready[p.Name] = time.Since(t0)
		}
	}
	deadline := time.After(5 * time.Minute)
	for len(ready) < want {
		select {
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-deadline:
			return nil, nil, nil, fmt.Errorf("%d of %d pods %s Ready after 5 minutes", len(ready), want, selector)
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The watch ended (a timeout on a busy API server): list, watch again.
				list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
				if err != nil {
					return nil, nil, nil, err
				}
				for i := range list.Items {
					note(&list.Items[i])
				}
				if w, err = client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion}); err != nil {
					return nil, nil, nil, err
				}
				continue
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				note(p)
			}
		}
	}
	return ready, sched, seen, nil
}

// waitGone waits until no pod matches selector and network net holds no address on
// any node beyond baseline: every CNI DEL has run, so the next round may switch.
func waitGone(ctx context.Context, c lab.Config, client kubernetes.Interface, selector, net string, baseline map[int]map[string]bool) error {
	var left string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		left = ""
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			left = err.Error()
		} else if len(list.Items) > 0 {
			left = fmt.Sprintf("%d pods", len(list.Items))
		} else {
			for i := 1; i <= c.Nodes; i++ {
				for ip := range allocated(c, i, net) {
					if !baseline[i][ip] {
						left = fmt.Sprintf("%s still holds %s on %s", net, ip, c.NodeName(i))
					}
				}
			}
		}
		if left == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("deleting %s: after 3 minutes: %s", selector, left)
}

func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".kbench-tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
