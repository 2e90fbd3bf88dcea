package mtu

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/fjord-net/fjord/internal/probe"
)

// Layer is which network a pair was probed on.
type Layer string

// The layers.
const (
	Underlay Layer = "underlay" // node address to node address
	Overlay  Layer = "overlay"  // pod to pod across the pod network
)

// Pair is one probed direction.
type Pair struct {
	Layer    Layer      `json:"layer"`
	From     string     `json:"from"` // node names
	To       string     `json:"to"`
	FromPod  string     `json:"fromPod,omitempty"` // overlay: "ns/name" ("" = the node's overlay address)
	ToPod    string     `json:"toPod,omitempty"`
	Src      string     `json:"-"` // namespace path probes are sent from
	Dst      netip.Addr `json:"dst"`
	Expected int        `json:"configured"` // the sender's configured MTU (its interface's)
}

// PairResult is a pair and what was found.
type PairResult struct {
	Pair
	PathResult
	Err string `json:"error,omitempty"`
}

// NodeMTU is what a node is configured with.
type NodeMTU struct {
	Node     string `json:"node"`
	Underlay int    `json:"underlay"` // underlay interface MTU
	Pod      int    `json:"pod"`      // pod interface MTU (node.json)
	Device   int    `json:"device"`   // vxlan device MTU (0 in routed mode)
	Overhead int    `json:"overhead"` // encapsulation overhead (50 vxlan over IPv4, 0 routed)
}

// Finding is one problem, with its evidence and fix.
type Finding struct {
	Severity string `json:"severity"` // FAIL or WARN
	What     string `json:"what"`
	Fix      string `json:"fix,omitempty"`
}

// Findings judges the results against the configuration.
func Findings(results []PairResult, nodes []NodeMTU) []Finding {
	var out []Finding
	byNode := map[string]NodeMTU{}
	for _, n := range nodes {
		byNode[n.Node] = n
	}
	out = append(out, consistency(nodes)...)
	var bad []PairResult // overlay pairs below their configured MTU
	for _, r := range results {
		what := fmt.Sprintf("%s %s→%s", r.Layer, r.From, r.To)
		switch {
		case r.Err != "":
			out = append(out, Finding{"FAIL", what + ": not probed: " + r.Err, ""})
		case !r.Reachable:
			out = append(out, Finding{"FAIL", fmt.Sprintf("%s: no answer even to %d-byte packets: the path is down", what, r.FailedAt),
				fmt.Sprintf("fjord doctor --node %s and --node %s (partition? link down? firewall?)", r.From, r.To)})
		case r.Works >= r.Expected:
		case r.BlackHole():
			f := Finding{"FAIL", fmt.Sprintf("%s: packets over %d bytes vanish without any ICMP \"fragmentation needed\" (black hole); %s is configured for %d",
				what, r.Works, r.From, r.Expected), ""}
			if r.Layer == Underlay {
				f.Fix = underlayFix(r, byNode)
			}
			out = append(out, f)
		case r.Failure == probe.FragNeeded:
			out = append(out, Finding{"WARN", fmt.Sprintf("%s: path MTU %d is below the configured %d; a hop reports it, so path-MTU discovery copes, but every new flow pays for it and an ICMP filter would make it a black hole",
				what, r.Works, r.Expected), ""})
		case r.Failure == probe.LocalTooBig:
			out = append(out, Finding{"WARN", fmt.Sprintf("%s: %s's own interface only carries %d of the %d expected", what, r.From, r.Works, r.Expected), ""})
		default:
			out = append(out, Finding{"FAIL", fmt.Sprintf("%s: packets over %d bytes are refused (%s)", what, r.Works, r.Failure), ""})
		}
		if r.Layer == Overlay && r.Reachable && r.Err == "" && r.Works < r.Expected {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		out = append(out, overlayFix(bad, byNode))
	}
	return out
}

// consistency flags nodes whose underlay MTU differs from the others'.
func consistency(nodes []NodeMTU) []Finding {
	count := map[int][]string{}
	for _, n := range nodes {
		if n.Underlay > 0 {
			count[n.Underlay] = append(count[n.Underlay], n.Node)
		}
	}
	if len(count) < 2 {
		return nil
	}
	var parts []string
	for mtu, ns := range count {
		sort.Strings(ns)
		parts = append(parts, fmt.Sprintf("%s: %d", strings.Join(ns, ","), mtu))
	}
	sort.Strings(parts)
	return []Finding{{"FAIL", "underlay MTUs differ between nodes (" + strings.Join(parts, "; ") + "); nodes sharing a network must use one MTU, or big frames to the smaller ones vanish",
		"set the same MTU on every node's underlay interface (and switch ports), then restart the agents so pod MTUs follow"}}
}

// culprit is the node among candidates with the smallest underlay MTU, when that is
// smaller than every other node's; others is the largest MTU the rest use.
func culprit(candidates []string, byNode map[string]NodeMTU) (low NodeMTU, others int, ok bool) {
	for _, n := range candidates {
		if c := byNode[n]; c.Underlay > 0 && (low.Node == "" || c.Underlay < low.Underlay) {
			low = c
		}
	}
	if low.Node == "" {
		return low, 0, false
	}
	for _, c := range byNode {
		if c.Node == low.Node {
			continue
		}
		if c.Underlay <= low.Underlay {
			return low, 0, false // not the only small one
		}
		others = max(others, c.Underlay)
	}
	return low, others, others > 0
}

func underlayFix(r PairResult, byNode map[string]NodeMTU) string {
	if c, others, ok := culprit([]string{r.From, r.To}, byNode); ok {
		return fmt.Sprintf("raise %s's underlay MTU to %d (its interface and switch port), or lower every node's to %d", c.Node, others, c.Underlay)
	}
	return fmt.Sprintf("a link between %s and %s carries only %d bytes: fix it, or lower every node's underlay MTU to %d (the agents then give pods %d less)",
		r.From, r.To, r.Works, r.Works, byNode[r.From].Overhead)
}

// overlayFix names the largest pod MTU that works everywhere and the node to blame.
func overlayFix(bad []PairResult, byNode map[string]NodeMTU) Finding {
	works := bad[0].Works
	var names []string
	for _, r := range bad {
		works = min(works, r.Works)
		for _, n := range []string{r.From, r.To} {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	// The node in every bad pair is the one to blame.
	var common []string
	for _, n := range names {
		all := true
		for _, r := range bad {
			all = all && (r.From == n || r.To == n)
		}
		if all {
			common = append(common, n)
		}
	}
	f := Finding{Severity: "FAIL", What: fmt.Sprintf("the pod network carries only %d bytes between %s, but pods are configured for more", works, strings.Join(names, ", "))}
	blame := names
	if len(common) == 1 {
		blame = common
	}
	if c, others, ok := culprit(blame, byNode); ok {
		f.Fix = fmt.Sprintf("pods talking to %s need MTU ≤ %d (fjord agent --mtu %d on every node; pods get it when re-created), or raise %s's underlay MTU to %d",
			c.Node, works, works, c.Node, others)
	} else {
		f.Fix = fmt.Sprintf("pods need MTU ≤ %d (fjord agent --mtu %d on every node; pods get it when re-created), or raise the underlay MTU on the path", works, works)
	}
	return f
}
