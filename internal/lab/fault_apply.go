package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/inns"
)

// Tables the faults create. They are ordinary, "foreign" tables: the tools must find
// them the way they find an operator's firewall.
const (
	faultFilterTable = "fault_filter"
	faultICMPTable   = "fault_icmp"
)

func partitionTable(node string) string { return "fault_partition_" + node }

// bridgeNFSysctls make the underlay bridge hand frames to the IP stack's netfilter
// hooks (br_netfilter is built into this kernel). With them on, the bridge refragments
// a too-big packet that lacks DF instead of dropping it as a switch would; the MTU
// fault turns them off for its lifetime so the underlay behaves like a switch.
var bridgeNFSysctls = []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables"}

func (c Config) ulNSPath() string { return filepath.Join("/run/netns", c.UnderlayNS()) }

func (c Config) inject(i int, f *Fault) error {
	s := f.Spec
	switch s.Kind {
	case FaultUnderlayMTU:
		return c.injectMTU(i, f)
	case FaultICMPBlackhole:
		f.Table = "inet " + faultICMPTable
		f.Summary = fmt.Sprintf("%s drops ICMP fragmentation-needed and ICMPv6 packet-too-big (table %s)", s.Node, f.Table)
		return inns.NFT(c.nodeNSPath(i), knftables.InetFamily, faultICMPTable, func(tx *knftables.Transaction) {
			tx.Add(&knftables.Table{})
			for _, h := range []knftables.BaseChainHook{knftables.InputHook, knftables.ForwardHook, knftables.OutputHook} {
				name := string(h)
				tx.Add(&knftables.Chain{Name: name, Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(h), Priority: knftables.PtrTo(knftables.FilterPriority)})
				tx.Add(&knftables.Rule{Chain: name, Rule: "icmp type destination-unreachable icmp code frag-needed drop"})
				tx.Add(&knftables.Rule{Chain: name, Rule: "icmpv6 type packet-too-big drop"})
			}
		})
	case FaultNFTDrop:
		rule := nftDropRule(s)
		f.Table = "inet " + faultFilterTable
		f.Summary = fmt.Sprintf("%s drops %q in table %s (chains input and forward)", s.Node, rule, f.Table)
		if out, _ := inns.NFTList(c.nodeNSPath(i), "list", "tables"); slices.Contains(strings.Split(out, "\n"), "table inet "+faultFilterTable) {
			return fmt.Errorf("%s already has a table inet %s that this fault did not create", s.Node, faultFilterTable)
		}
		return inns.NFT(c.nodeNSPath(i), knftables.InetFamily, faultFilterTable, func(tx *knftables.Transaction) {
			tx.Add(&knftables.Table{})
			for _, h := range []knftables.BaseChainHook{knftables.InputHook, knftables.ForwardHook} {
				name := string(h)
				tx.Add(&knftables.Chain{Name: name, Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(h), Priority: knftables.PtrTo(knftables.FilterPriority)})
				tx.Add(&knftables.Rule{Chain: name, Rule: rule})
			}
		})
	case FaultPartition:
		f.Table = "bridge " + partitionTable(s.Node)
		f.Summary = fmt.Sprintf("the underlay switch drops every frame to and from %s (table %s in %s)", s.Node, f.Table, c.UnderlayNS())
		port := c.NodeName(i)
		return inns.NFT(c.ulNSPath(), knftables.BridgeFamily, partitionTable(s.Node), func(tx *knftables.Transaction) {
			tx.Add(&knftables.Table{})
			tx.Add(&knftables.Chain{Name: "forward", Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.ForwardHook), Priority: knftables.PtrTo(knftables.FilterPriority)})
			tx.Add(&knftables.Rule{Chain: "forward", Rule: fmt.Sprintf("iifname %q drop", port)})
			tx.Add(&knftables.Rule{Chain: "forward", Rule: fmt.Sprintf("oifname %q drop", port)})
		})
	case FaultCPUHog:
		for w := 1; w <= s.Workers; w++ {
			pid, err := c.spawn(fmt.Sprintf("fault-cpu-hog-%s-%d", s.Node, w), c.nodeNSPath(i), "lab", "fault-hog", "--duration", s.Duration.String())
			if err != nil {
				c.killHogs(*f)
				return err
			}
			f.PIDs = append(f.PIDs, pid)
		}
		f.Summary = fmt.Sprintf("%d busy process(es) in %s's namespace for %v (pids %v)", s.Workers, s.Node, s.Duration, f.PIDs)
		return nil
	case FaultDelay:
		return c.injectDelay(i, f)
	}
	return fmt.Errorf("unknown fault %q", s.Kind)
}

func (c Config) undo(i int, f Fault, all []Fault) error {
	switch f.Spec.Kind {
	case FaultUnderlayMTU:
		return c.undoMTU(i, f)
	case FaultICMPBlackhole:
		return deleteTable(c.nodeNSPath(i), knftables.InetFamily, faultICMPTable)
	case FaultNFTDrop:
		return deleteTable(c.nodeNSPath(i), knftables.InetFamily, faultFilterTable)
	case FaultPartition:
		return deleteTable(c.ulNSPath(), knftables.BridgeFamily, partitionTable(f.Spec.Node))
	case FaultCPUHog:
		c.killHogs(f)
		return nil
	case FaultDelay:
		h, l, done, err := c.nodeEth0(i)
		if err != nil {
			return err
		}
		defer done()
		return h.QdiscDel(netemOn(l))
	}
	return fmt.Errorf("unknown fault %q", f.Spec.Kind)
}

func nftDropRule(s FaultSpec) string {
	rule := "ip daddr " + s.Dst.String()
	if s.Dst.Is6() {
		rule = "ip6 daddr " + s.Dst.String()
	}
	switch {
	case s.DstPort > 0 && s.Proto != "":
		rule += " " + s.Proto + " dport " + strconv.Itoa(s.DstPort)
	case s.DstPort > 0:
		rule += " meta l4proto { tcp, udp } th dport " + strconv.Itoa(s.DstPort)
	case s.Proto != "":
		rule += " meta l4proto " + s.Proto
	}
	return rule + " drop"
}

// deleteTable removes a table a fault created; one that is already gone is fine.
func deleteTable(nsPath string, family knftables.Family, table string) error {
	err := inns.NFT(nsPath, family, table, func(tx *knftables.Transaction) { tx.Delete(&knftables.Table{}) })
	if err != nil && (knftables.IsNotFound(err) || errors.Is(err, os.ErrNotExist)) {
		return nil
	}
	return err
}

// nodeAndSwitch opens netlink handles in node i's namespace and the underlay's.
func (c Config) nodeAndSwitch(i int) (node, sw *netlink.Handle, done func(), err error) {
	nh, nns, err := nsHandle(c.NodeNS(i))
	if err != nil {
		return nil, nil, nil, err
	}
	uh, uns, err := nsHandle(c.UnderlayNS())
	if err != nil {
		nh.Close()
		nns.Close()
		return nil, nil, nil, err
	}
	return nh, uh, func() { nh.Close(); nns.Close(); uh.Close(); uns.Close() }, nil
}

func (c Config) sysctlStatePath() string {
	return filepath.Join(c.faultDir(), "underlay-sysctls.state")
}

func (c Config) injectMTU(i int, f *Fault) error {
	s := f.Spec
	nh, uh, done, err := c.nodeAndSwitch(i)
	if err != nil {
		return err
	}
	defer done()
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		return err
	}
	port, err := uh.LinkByName(c.NodeName(i))
	if err != nil {
		return err
	}
	f.PrevMTU = eth0.Attrs().MTU
	// The switch behaves like a switch while any MTU fault is on (see bridgeNFSysctls).
	if _, err := os.Stat(c.sysctlStatePath()); err != nil {
		prev := map[string]string{}
		for _, k := range bridgeNFSysctls {
			if v, err := inns.Sysctl(c.ulNSPath(), k); err == nil {
				prev[k] = v
			}
		}
		if err := os.MkdirAll(c.faultDir(), 0o755); err != nil {
			return err
		}
		b, _ := json.Marshal(prev)
		if err := os.WriteFile(c.sysctlStatePath(), b, 0o644); err != nil {
			return err
		}
		for k := range prev {
			if err := inns.SetSysctl(c.ulNSPath(), k, "0"); err != nil {
				return err
			}
		}
	}
	if err := nh.LinkSetMTU(eth0, s.MTU); err != nil {
		return fmt.Errorf("set %s eth0 MTU: %w", s.Node, err)
	}
	if err := uh.LinkSetMTU(port, s.MTU); err != nil {
		_ = nh.LinkSetMTU(eth0, f.PrevMTU)
		return fmt.Errorf("set switch port %s MTU: %w", c.NodeName(i), err)
	}
	f.Summary = fmt.Sprintf("%s's underlay link (eth0 and its switch port) has MTU %d instead of %d; bigger frames to it are dropped without ICMP", s.Node, s.MTU, f.PrevMTU)
	return nil
}

func (c Config) undoMTU(i int, f Fault) error {
	nh, uh, done, err := c.nodeAndSwitch(i)
	if err != nil {
		return err
	}
	defer done()
	prev := f.PrevMTU
	if prev == 0 {
		prev = c.UnderlayMTU
	}
	var errs []error
	if l, err := uh.LinkByName(c.NodeName(i)); err != nil || uh.LinkSetMTU(l, prev) != nil {
		errs = append(errs, fmt.Errorf("restore switch port %s MTU %d", c.NodeName(i), prev))
	}
	if l, err := nh.LinkByName("eth0"); err != nil || nh.LinkSetMTU(l, prev) != nil {
		errs = append(errs, fmt.Errorf("restore %s eth0 MTU %d", f.Spec.Node, prev))
	}
	// The last MTU fault restores the switch's netfilter sysctls.
	others := 0
	for _, o := range c.faults() {
		if o.Spec.Kind == FaultUnderlayMTU && o.Spec.ID() != f.Spec.ID() {
			others++
		}
	}
	if others == 0 {
		if b, err := os.ReadFile(c.sysctlStatePath()); err == nil {
			prev := map[string]string{}
			_ = json.Unmarshal(b, &prev)
			for k, v := range prev {
				if err := inns.SetSysctl(c.ulNSPath(), k, v); err != nil {
					errs = append(errs, err)
				}
			}
			_ = os.Remove(c.sysctlStatePath())
		}
	}
	return errors.Join(errs...)
}

func (c Config) killHogs(f Fault) {
	procs := c.labProcesses()
	for _, pid := range f.PIDs {
		if name, ok := procs[pid]; ok && strings.HasPrefix(name, "fault-cpu-hog-") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for t := 0; t < 100; t++ {
		alive := false
		procs := c.labProcesses()
		for _, pid := range f.PIDs {
			_, ok := procs[pid]
			alive = alive || ok
		}
		if !alive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func netemOn(l netlink.Link) netlink.Qdisc {
	return netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)}, netlink.NetemQdiscAttrs{})
}

// ErrNoNetem says the kernel cannot delay packets.
var ErrNoNetem = errors.New("this kernel has no netem qdisc (sch_netem), so the lab cannot add delay; " +
	"on a kernel with netem this fault runs 'tc qdisc add dev eth0 root netem delay D' in the node. " +
	"Latency between nodes can still be measured (fjord latency) but not injected here")

// nodeEth0 opens a netlink handle in node i and finds its underlay link.
func (c Config) nodeEth0(i int) (*netlink.Handle, netlink.Link, func(), error) {
	h, ns, err := nsHandle(c.NodeNS(i))
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := h.LinkByName("eth0")
	if err != nil {
		h.Close()
		ns.Close()
		return nil, nil, nil, err
	}
	return h, l, func() { h.Close(); ns.Close() }, nil
}

func (c Config) injectDelay(i int, f *Fault) error {
	h, l, done, err := c.nodeEth0(i)
	if err != nil {
		return err
	}
	defer done()
	q := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)},
		netlink.NetemQdiscAttrs{Latency: uint32(f.Spec.Delay / time.Microsecond)})
	if err := h.QdiscAdd(q); err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("%w (kernel said: %v)", ErrNoNetem, err)
		}
		return fmt.Errorf("add netem on %s eth0: %w", f.Spec.Node, err)
	}
	f.Summary = fmt.Sprintf("%s's underlay link delays every packet by %v (netem)", f.Spec.Node, f.Spec.Delay)
	return nil
}
