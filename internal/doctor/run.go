package doctor

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Config says what to examine.
type Config struct {
	Nodes    []resolve.Node
	Pods     []resolve.Pod
	Services []servicemap.ServicePort
	StoreUp  bool // Services and node readiness come from the store
	// Only restricts the node checks to one node ("" = every node this machine can enter).
	Only string
	// Window is how long CPU use is sampled (default 1s).
	Window time.Duration
	// Etcd, if set, is checked in an "etcd" section.
	Etcd *EtcdTarget
	// ClockSkew, if set, measures node b's clock against node a's.
	ClockSkew func(ctx context.Context, a, b resolve.Node) (time.Duration, time.Duration, error)
	// Proc is the procfs root (default /proc).
	Proc string
}

// Run examines the nodes and the cluster.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Window <= 0 {
		cfg.Window = time.Second
	}
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	var targets []resolve.Node
	for _, n := range cfg.Nodes {
		if n.Here && (cfg.Only == "" || n.Name == cfg.Only) {
			targets = append(targets, n)
		}
	}
	if cfg.Only != "" && len(targets) == 0 {
		return Report{}, fmt.Errorf("--node %s: not a node this machine can enter (known: %s)", cfg.Only, nodeNames(cfg.Nodes))
	}
	before, cpuErr := takeSample(cfg.Proc)
	cl := Cluster{Nodes: cfg.Nodes, Services: cfg.Services, StoreUp: cfg.StoreUp}
	mach := machineFeatures(targets)
	var rep Report
	facts := make([]NodeFacts, len(targets))
	for i, n := range targets {
		c := &checks{scope: n.Name}
		f := gatherNode(n, cfg.Pods)
		facts[i] = f
		judgeKernel(c, mach, f)
		judgeSysctls(c, f)
		judgeMTU(c, f)
		judgeOffloads(c, f)
		judgeFirewall(c, f)
		judgeAgent(c, f, cl)
		judgeProxy(c, f, cl)
		judgeConntrack(c, f, cl)
		mtu := 0
		if f.Underlay != nil {
			mtu = f.Underlay.MTU
		}
		judgePeers(c, n.Name, probePeers(n, cfg.Nodes, mtu, f.VXLAN != nil))
		for _, e := range f.Errors {
			c.add("read", Warn, "could not read "+e, "")
		}
		rep.Checks = append(rep.Checks, c.out...)
	}
	// CPU: one window for every node, at least cfg.Window long.
	if wait := time.Until(before.at.Add(cfg.Window)); wait > 0 {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(wait):
		}
	}
	after, err := takeSample(cfg.Proc)
	if cpuErr == nil {
		cpuErr = err
	}
	cluster := &checks{scope: "cluster"}
	if cpuErr != nil {
		cluster.add("cpu", Warn, "CPU use not sampled: "+cpuErr.Error(), "")
	} else {
		for _, n := range targets {
			c := &checks{scope: n.Name}
			if ino, ok := nsInode(nsPathOrSelf(n.Netns)); ok {
				judgeNodeCPU(c, n.Name, busyIn(before, after, ino, cfg.Proc), after.at.Sub(before.at).Round(10*time.Millisecond))
			}
			rep.Checks = append(rep.Checks, c.out...)
		}
		psi := -1.0
		if b, err := os.ReadFile(cfg.Proc + "/pressure/cpu"); err == nil {
			psi = ParsePSI(string(b))
		}
		judgeMachineCPU(cluster, before, after, psi)
	}
	judgeUnderlayMTUs(cluster, facts)
	judgeServices(cluster, cl)
	judgeSkew(ctx, cluster, cfg, targets)
	rep.Checks = append(rep.Checks, cluster.out...)
	if cfg.Etcd != nil {
		e := &checks{scope: "etcd"}
		checkEtcd(ctx, e, *cfg.Etcd)
		rep.Checks = append(rep.Checks, e.out...)
	}
	return rep, nil
}

func nsPathOrSelf(p string) string {
	if p == "" {
		return "/proc/self/ns/net"
	}
	return p
}

func nodeNames(nodes []resolve.Node) string {
	var s []string
	for _, n := range nodes {
		if n.Here {
			s = append(s, n.Name)
		}
	}
	return strings.Join(s, ", ")
}

// machine is what the kernel offers (one kernel for every node of a lab).
type machine struct {
	VXLAN, BTF, BPF, IPVS bool
	BPFErr                string
}

func machineFeatures(nodes []resolve.Node) machine {
	m := machine{IPVS: kernel.HasIPVS()}
	if _, err := os.Stat("/sys/module/vxlan"); err == nil {
		m.VXLAN = true
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		m.BTF = true
	}
	if err := features.HaveProgramType(ebpf.RawTracepoint); err == nil {
		m.BPF = true
	} else {
		m.BPFErr = err.Error()
	}
	return m
}

// judgeKernel reports the kernel features fjord uses.
func judgeKernel(c *checks, m machine, f NodeFacts) {
	var have, missing []string
	add := func(ok bool, name string) {
		if ok {
			have = append(have, name)
		} else {
			missing = append(missing, name)
		}
	}
	add(m.VXLAN || f.VXLAN != nil, "vxlan")
	add(len(f.Tables) > 0 || f.HasProxy || !hasErr(f, "nft list tables"), "nftables")
	_, ct := f.Sysctls["net.netfilter.nf_conntrack_max"]
	add(ct, "conntrack")
	add(m.BPF, "BPF (tracepoint programs)")
	add(m.BTF, "BTF")
	ipvs := "IPVS absent: fjord's nftables dispatch gives the same schedulers (rr, wrr, sh, maglev in the kernel; lc, wlc in userspace)"
	if m.IPVS {
		ipvs = "IPVS present (fjord does not need it)"
	}
	if len(missing) > 0 {
		st := Warn
		for _, x := range missing {
			if x == "nftables" || x == "conntrack" || (x == "vxlan" && f.Node.Mode == "vxlan") {
				st = Fail
			}
		}
		c.add("kernel", st, "missing: "+strings.Join(missing, ", ")+"; present: "+strings.Join(have, ", ")+"; "+ipvs,
			"a kernel with those features (modprobe vxlan nf_tables nf_conntrack); fjord trace's drop reasons need BPF")
		return
	}
	c.pass("kernel", "%s; %s", strings.Join(have, ", "), ipvs)
}

func hasErr(f NodeFacts, prefix string) bool {
	for _, e := range f.Errors {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// judgeUnderlayMTUs flags nodes whose underlay MTU differs from the others'.
func judgeUnderlayMTUs(c *checks, facts []NodeFacts) {
	by := map[int][]string{}
	for _, f := range facts {
		if f.Underlay != nil {
			by[f.Underlay.MTU] = append(by[f.Underlay.MTU], f.Node.Name)
		}
	}
	if len(by) <= 1 {
		for m, ns := range by {
			c.pass("mtu", "every node's underlay MTU is %d (%s)", m, strings.Join(ns, ", "))
		}
		return
	}
	var parts []string
	for m, ns := range by {
		parts = append(parts, fmt.Sprintf("%s: %d", strings.Join(ns, ","), m))
	}
	sort.Strings(parts)
	c.add("mtu", Fail, "underlay MTUs differ between nodes ("+strings.Join(parts, "; ")+"): big frames to the smaller ones vanish",
		"one MTU on every node's underlay interface and switch port; then restart the agents (fjord mtu shows what works)")
}

// judgeSkew measures clock offsets between nodes.
func judgeSkew(ctx context.Context, c *checks, cfg Config, nodes []resolve.Node) {
	if cfg.ClockSkew == nil || len(nodes) < 2 {
		return
	}
	ref := nodes[0]
	var parts []string
	worst := time.Duration(0)
	for _, n := range nodes[1:] {
		off, rtt, err := cfg.ClockSkew(ctx, ref, n)
		if err != nil {
			c.add("clock", Warn, fmt.Sprintf("clock of %s against %s not measured: %v", n.Name, ref.Name, err), "is the agent on "+n.Name+" running? (it answers the probes)")
			continue
		}
		if off < 0 {
			off = -off
		}
		worst = max(worst, off)
		parts = append(parts, fmt.Sprintf("%s %v (±%v)", n.Name, off.Round(time.Microsecond), (rtt/2).Round(time.Microsecond)))
	}
	if len(parts) == 0 {
		return
	}
	ev := fmt.Sprintf("clock offset against %s: %s", ref.Name, strings.Join(parts, ", "))
	if worst >= 500*time.Millisecond {
		c.add("clock", Fail, ev+": leases, certificates and logs disagree", "run NTP (chrony) on every node")
	} else if worst >= 50*time.Millisecond {
		c.add("clock", Warn, ev, "run NTP (chrony) on every node")
	} else {
		c.pass("clock", "%s", ev)
	}
}
