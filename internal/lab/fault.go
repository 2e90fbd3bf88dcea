package lab

// Faults to practise on: `fjord lab fault` breaks one thing on one node the way it
// breaks in production, and the troubleshooting tools must find it. Every fault is
// recorded in the state directory (faults/KIND-NODE.json) with what it changed, so
// ClearFaults can restore it and `lab down` removes whatever is left (everything a
// fault touches lives in the lab's namespaces or is a lab process anyway).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a fault.
type FaultKind string

// The faults the lab can inject.
const (
	// FaultUnderlayMTU lowers a node's underlay link MTU (its eth0 and the switch port
	// facing it), so full-size frames to it are dropped without any ICMP: the VXLAN
	// MTU black hole.
	FaultUnderlayMTU FaultKind = "underlay-mtu"
	// FaultICMPBlackhole drops ICMP "fragmentation needed" (and ICMPv6 "packet too
	// big") in a node, which breaks path-MTU discovery through it.
	FaultICMPBlackhole FaultKind = "icmp-blackhole"
	// FaultNFTDrop adds a foreign nftables firewall ("table inet filter") with a drop
	// rule for one destination to a node.
	FaultNFTDrop FaultKind = "nft-drop"
	// FaultPartition cuts a node off the underlay (the switch drops its frames).
	FaultPartition FaultKind = "partition"
	// FaultCPUHog runs busy processes in a node's namespace that compete for the CPU
	// its packet processing (softirq) needs.
	FaultCPUHog FaultKind = "cpu-hog"
	// FaultDelay adds latency to a node's underlay link (needs sch_netem, which this
	// machine's kernel lacks: injecting it fails with a clear message).
	FaultDelay FaultKind = "delay"
)

// FaultKinds lists every kind, in the order help text shows them.
var FaultKinds = []FaultKind{FaultUnderlayMTU, FaultICMPBlackhole, FaultNFTDrop, FaultPartition, FaultCPUHog, FaultDelay}

// FaultSpec is what to inject.
type FaultSpec struct {
	Kind FaultKind
	Node string
	// MTU for underlay-mtu.
	MTU int
	// Dst (and DstPort, 0 = any; Proto "tcp"/"udp", "" = any) for nft-drop.
	Dst     netip.Addr
	DstPort int
	Proto   string
	// Workers (processes) and Duration for cpu-hog.
	Workers  int
	Duration time.Duration
	// Delay for delay.
	Delay time.Duration
}

// Fault is an injected fault and what it changed, enough to restore it.
type Fault struct {
	Spec    FaultSpec `json:"spec"`
	Created time.Time `json:"created"`
	// Undo data.
	PrevMTU    int               `json:"prevMTU,omitempty"`
	PrevSysctl map[string]string `json:"prevSysctl,omitempty"` // underlay namespace sysctls
	Table      string            `json:"table,omitempty"`      // nft "family name" it created
	PIDs       []int             `json:"pids,omitempty"`       // cpu-hog processes
	// Summary says in one line what was done.
	Summary string `json:"summary"`
}

// ID is "KIND-NODE": one fault of a kind per node.
func (s FaultSpec) ID() string { return string(s.Kind) + "-" + s.Node }

// Validate checks the spec against the lab, naming the argument at fault.
func (c Config) validateFault(s FaultSpec) (int, error) {
	i, err := c.nodeIndex(s.Node)
	if err != nil {
		return 0, err
	}
	switch s.Kind {
	case FaultUnderlayMTU:
		if s.MTU < 1280 || s.MTU >= 65536 {
			return 0, fmt.Errorf("MTU: %d is outside 1280..65535", s.MTU)
		}
		if s.MTU == c.UnderlayMTU {
			return 0, fmt.Errorf("MTU: %d is the lab's underlay MTU already; pick a lower one (e.g. %d)", s.MTU, c.UnderlayMTU-100)
		}
	case FaultNFTDrop:
		if !s.Dst.IsValid() {
			return 0, errors.New("--dst: required (an address, or address:port)")
		}
		if s.Proto != "" && s.Proto != "tcp" && s.Proto != "udp" {
			return 0, fmt.Errorf("--proto: %q must be tcp or udp", s.Proto)
		}
		if s.DstPort < 0 || s.DstPort > 65535 {
			return 0, fmt.Errorf("--dst: port %d is outside 1..65535", s.DstPort)
		}
	case FaultCPUHog:
		if s.Workers < 1 || s.Workers > 64 {
			return 0, fmt.Errorf("--workers: %d is outside 1..64", s.Workers)
		}
		if s.Duration <= 0 || s.Duration > time.Hour {
			return 0, fmt.Errorf("--duration: %v is outside (0, 1h]", s.Duration)
		}
	case FaultDelay:
		if s.Delay <= 0 || s.Delay > 10*time.Second {
			return 0, fmt.Errorf("DELAY: %v is outside (0, 10s]", s.Delay)
		}
	case FaultICMPBlackhole, FaultPartition:
	default:
		return 0, fmt.Errorf("unknown fault %q (one of %v)", s.Kind, FaultKinds)
	}
	return i, nil
}

func (c Config) nodeIndex(node string) (int, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(node, "n"))
	if err != nil || !strings.HasPrefix(node, "n") || i < 1 || i > c.Nodes {
		return 0, fmt.Errorf("NODE: %q is not a node of lab %q (n1..n%d)", node, c.Name, c.Nodes)
	}
	return i, nil
}

func (c Config) faultDir() string { return filepath.Join(c.StateDir(), "faults") }

func (c Config) faultPath(id string) string { return filepath.Join(c.faultDir(), id+".json") }

func (c Config) saveFault(f Fault) error {
	if err := os.MkdirAll(c.faultDir(), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	tmp := c.faultPath(f.Spec.ID()) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.faultPath(f.Spec.ID()))
}

// Faults lists the faults injected in lab name, oldest first.
func Faults(runRoot, name string) ([]Fault, error) {
	c, err := Load(runRoot, name)
	if err != nil {
		return nil, fmt.Errorf("lab %q is not up", name)
	}
	return c.faults(), nil
}

func (c Config) faults() []Fault {
	files, _ := filepath.Glob(filepath.Join(c.faultDir(), "*.json"))
	var out []Fault
	for _, f := range files {
		b, err := os.ReadFile(f)
		var ft Fault
		if err == nil && json.Unmarshal(b, &ft) == nil {
			out = append(out, ft)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// InjectFault injects one fault into lab name and records it.
func InjectFault(runRoot, name string, s FaultSpec) (Fault, error) {
	c, err := Load(runRoot, name)
	if err != nil {
		return Fault{}, fmt.Errorf("lab %q is not up", name)
	}
	i, err := c.validateFault(s)
	if err != nil {
		return Fault{}, err
	}
	if _, err := os.Stat(c.faultPath(s.ID())); err == nil {
		return Fault{}, fmt.Errorf("fault %s is already injected ('fjord lab fault clear %s %s' first)", s.ID(), s.Kind, s.Node)
	}
	f := Fault{Spec: s, Created: time.Now()}
	if err := c.inject(i, &f); err != nil {
		return Fault{}, err
	}
	return f, c.saveFault(f)
}

// ClearFaults undoes the matching faults (kind "" = all, node "" = every node) and
// returns what it cleared. It keeps going past errors and reports them all.
func ClearFaults(runRoot, name string, kind FaultKind, node string) ([]Fault, error) {
	c, err := Load(runRoot, name)
	if err != nil {
		return nil, fmt.Errorf("lab %q is not up", name)
	}
	return c.clearFaults(kind, node)
}

func (c Config) clearFaults(kind FaultKind, node string) ([]Fault, error) {
	var done []Fault
	var errs []error
	all := c.faults()
	for k := len(all) - 1; k >= 0; k-- { // newest first: undo in reverse order
		f := all[k]
		if kind != "" && f.Spec.Kind != kind || node != "" && f.Spec.Node != node {
			continue
		}
		i, err := c.nodeIndex(f.Spec.Node)
		if err == nil {
			err = c.undo(i, f, all)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("clear %s: %w", f.Spec.ID(), err))
			continue
		}
		_ = os.Remove(c.faultPath(f.Spec.ID()))
		done = append(done, f)
	}
	return done, errors.Join(errs...)
}
