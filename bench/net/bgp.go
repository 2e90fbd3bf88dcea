package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// BGP mode on two racks (issue 12): two racked labs, each with its nodes in two subnets
// joined by a router namespace running BIRD; n1 sits in rack 1, n2 in rack 2, so every
// n1 → n2 packet crosses the router.
//
//   - throughput: pod → pod in bgp mode (plain routing through the router), the same
//     iperf3 pair in the node namespaces (raw, through the same router), and pod → pod in
//     vxlan mode over the same racks, alternated round-robin;
//   - convergence: how long from a node joining until every other node routes to its
//     pods, and from a node's death (its link cut) until its routes are gone from the
//     router and every other node.
var (
	bgpLab        = lab{Name: "benchb", Subnet: "198.18.52.0/24", Mode: "bgp", Extra: []string{"--racks", "2", "--router", "bird"}}
	racksVXLANLab = lab{Name: "benchx", Subnet: "198.18.54.0/24", Mode: "vxlan", Extra: []string{"--racks", "2", "--router", "bird"}}
)

// convergenceRounds is how many join and death measurements are taken.
const convergenceRounds = 5

type bgpResults struct {
	Throughput []*tpCase
	Join, Dead []float64 // seconds
}

// rackAddr is node i's address in a racked lab (round-robin racks, as the lab places them).
func rackAddr(l lab, i int) string {
	p := netip.MustParsePrefix(l.Subnet)
	a4 := p.Addr().As4()
	a4[2] += byte((i - 1) % 2)
	a := netip.AddrFrom4(a4)
	for j := 0; j < 10+i; j++ {
		a = a.Next()
	}
	return a.String()
}

func (b *bench) bgp(ctx context.Context, res *results) error {
	pods := map[string][2]pod{}
	for _, l := range []lab{bgpLab, racksVXLANLab} {
		if err := b.labUp(ctx, l); err != nil {
			return err
		}
		c, s, err := b.iperfPods(ctx, l)
		if err != nil {
			return err
		}
		pods[l.Mode] = [2]pod{c, s}
	}
	if err := b.startServer(bgpLab.nodeNS(2)); err != nil {
		return err
	}
	rawMTU, err := ifaceMTU(bgpLab.nodeNS(1), "eth0")
	if err != nil {
		return err
	}
	var cases []*tpCase
	for _, p := range []int{1, 8} {
		cases = append(cases, &tpCase{Name: "raw via router", Streams: p, ClientNS: bgpLab.nodeNS(1), Server: rackAddr(bgpLab, 2), MTU: rawMTU})
		for _, mode := range []string{"bgp", "vxlan"} {
			cl := pods[mode][0]
			ns := strings.TrimPrefix(cl.Netns, "/run/netns/")
			mtu, err := ifaceMTU(ns, "eth0")
			if err != nil {
				return err
			}
			cases = append(cases, &tpCase{Name: mode + " racks", Streams: p, ClientNS: ns, Server: pods[mode][1].IP, MTU: mtu})
		}
	}
	if err := b.runRounds(ctx, cases); err != nil {
		return err
	}
	res.BGP.Throughput = cases
	// The vxlan lab is not needed for convergence; fewer processes, less noise.
	b.labDown(racksVXLANLab)
	return b.convergence(ctx, &res.BGP)
}

// convergence alternates the two measurements on node n3 of the bgp lab:
//
//	death: n3's eth0 goes down (a cut cable: no FIN, no NOTIFICATION). Measured until
//	n3's pod CIDR is gone from the router's kernel and from n1's and n2's.
//	join: n3 is deleted (its agent stops), then its agent starts again: a new node
//	registers, claims a pod CIDR and announces it. Measured from the agent's start until
//	n1 and n2 route to the CIDR.
func (b *bench) convergence(ctx context.Context, r *bgpResults) error {
	l := bgpLab
	for round := 0; round < convergenceRounds; round++ {
		cidr, err := nodeCIDR(ctx, b.fjord, l, "n3")
		if err != nil {
			return err
		}
		where := []string{l.prefix() + "-rt", l.nodeNS(1), l.nodeNS(2)}
		if err := waitRoutes(ctx, where, cidr, true, 60*time.Second); err != nil {
			return fmt.Errorf("before round %d: %w", round+1, err)
		}
		start := time.Now()
		if _, err := benchkit.RunCmd(ctx, 10*time.Second, os.Environ(), "ip", "netns", "exec", l.nodeNS(3), "ip", "link", "set", "eth0", "down"); err != nil {
			return err
		}
		if err := waitRoutes(ctx, where, cidr, false, 60*time.Second); err != nil {
			return fmt.Errorf("death round %d: %w", round+1, err)
		}
		r.Dead = append(r.Dead, time.Since(start).Seconds())
		b.logf("convergence %d/%d: death withdrawn everywhere in %.2f s", round+1, convergenceRounds, r.Dead[len(r.Dead)-1])
		if _, err := benchkit.RunCmd(ctx, 10*time.Second, os.Environ(), "ip", "netns", "exec", l.nodeNS(3), "ip", "link", "set", "eth0", "up"); err != nil {
			return err
		}
		// Back on the wire, n3's session comes back; let it, so the join below starts
		// from a node in good standing with the router.
		if err := waitRoutes(ctx, where, cidr, true, 60*time.Second); err != nil {
			return fmt.Errorf("after death round %d: %w", round+1, err)
		}
		// Join: delete the node (its agent stops by itself), wait for its routes to go,
		// then start its agent: from here on it is a new node.
		if _, err := benchkit.RunCmd(ctx, 30*time.Second, l.env(), b.fjord, "delete", "node", "n3"); err != nil {
			return err
		}
		if err := waitRoutes(ctx, where[1:], cidr, false, 60*time.Second); err != nil {
			return fmt.Errorf("deleting n3: %w", err)
		}
		start = time.Now()
		if _, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), b.fjord, "lab", "restart-agent", "--name", l.Name, "n3"); err != nil {
			return err
		}
		var newCIDR string
		for newCIDR == "" && time.Since(start) < 60*time.Second {
			newCIDR, _ = nodeCIDR(ctx, b.fjord, l, "n3")
			time.Sleep(5 * time.Millisecond)
		}
		if err := waitRoutes(ctx, where[1:], newCIDR, true, 60*time.Second); err != nil {
			return fmt.Errorf("join round %d: %w", round+1, err)
		}
		r.Join = append(r.Join, time.Since(start).Seconds())
		b.logf("convergence %d/%d: join routed everywhere in %.2f s", round+1, convergenceRounds, r.Join[len(r.Join)-1])
	}
	return nil
}

func nodeCIDR(ctx context.Context, fjord string, l lab, node string) (string, error) {
	out, err := benchkit.RunCmd(ctx, 10*time.Second, l.env(), fjord, "get", "node", node, "-o", "json")
	if err != nil {
		return "", err
	}
	var n struct {
		Spec struct {
			PodCIDR string `json:"podCIDR"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out, &n); err != nil {
		return "", err
	}
	return n.Spec.PodCIDR, nil
}

// waitRoutes polls (every 10 ms) until every namespace has (present) or lacks a route
// to cidr.
func waitRoutes(ctx context.Context, namespaces []string, cidr string, present bool, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		done := true
		for _, ns := range namespaces {
			out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ip", "route", "show", cidr).Output()
			if err != nil {
				return err
			}
			if has := strings.Contains(string(out), "via"); has != present {
				done = false
				break
			}
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("routes to %s never became present=%v in %v", cidr, present, namespaces)
}

// rankNote says what the throughput table can and cannot tell: whether each fjord path's
// runs stay apart from raw's, or their ranges overlap (on a loaded machine they do).
func (r bgpResults) rankNote() string {
	var overlap, apart []string
	for _, c := range r.Throughput {
		if c.Name == "raw via router" || len(c.Gbps) == 0 {
			continue
		}
		for _, raw := range r.Throughput {
			if raw.Name != "raw via router" || raw.Streams != c.Streams || len(raw.Gbps) == 0 {
				continue
			}
			if slices.Max(c.Gbps) < slices.Min(raw.Gbps) || slices.Min(c.Gbps) > slices.Max(raw.Gbps) {
				apart = append(apart, c.label())
			} else {
				overlap = append(overlap, c.label())
			}
		}
	}
	switch {
	case len(overlap) == 0:
		return "Every fjord path's runs lie entirely apart from raw's at the same stream count: the ratios above rank them."
	case len(apart) == 0:
		return "The runs of every fjord path overlap raw's (min – max): on this run's load the paths cannot be told apart, and a ratio above 100 % is noise, not a path faster than the raw one it contains. Rerun on a quiet machine to rank them."
	}
	return fmt.Sprintf("Runs apart from raw's: %s. Overlapping raw's (within noise): %s.", strings.Join(apart, ", "), strings.Join(overlap, ", "))
}

func (r bgpResults) markdown(all *results) string {
	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	m := all.Machine
	p("_Written by `make bench-net` (`bench/net/bgp.go`; `go run ./bench/net -skip throughput,cni` refreshes this section alone) on %s. Everything between the bench-net-bgp markers is regenerated._\n\n", all.Start.Format("2006-01-02 15:04 UTC"))
	p("**Machine:** %d CPUs, %s; kernel %s; fjord %s; load average at start %s, at end %s.\n\n", m.CPUs, m.CPU, m.Kernel, m.Commit, m.LoadStart, m.LoadEnd)
	p("Two racked labs, 3 nodes each, no demo pods: `benchb` (bgp mode, `--encap never`, racks 198.18.52.0/24 and 198.18.53.0/24) and `benchx` (vxlan mode, racks 198.18.54.0/24 and .55.0/24). "+
		"In both, a router namespace running BIRD 2 joins the racks; n1 is in rack 1 and n2 in rack 2, so every packet crosses the router. "+
		"The iperf3 server pod is on n2, the client pod on n1. **raw via router** is the same iperf3 pair in the node namespaces n1 → n2 of `benchb`: veth → bridge → router → bridge → veth, no fjord on the path. "+
		"All %d cases ran in the same rounds (%d rounds, `-t %d`, round-robin with rotation, as above). Ratio = median / raw-via-router median at the same stream count.\n\n",
		len(r.Throughput), *flagRounds, *flagSecs)
	p("| Path | Streams | MTU | Median Gbit/s | Min – max | vs raw via router | Median retransmits |\n|---|---:|---:|---:|---:|---:|---:|\n")
	find := func(name string, streams int) *tpCase {
		for _, c := range r.Throughput {
			if c.Name == name && c.Streams == streams {
				return c
			}
		}
		return nil
	}
	for _, streams := range []int{1, 8} {
		raw := find("raw via router", streams)
		for _, name := range []string{"raw via router", "bgp racks", "vxlan racks"} {
			c := find(name, streams)
			if c == nil || len(c.Gbps) == 0 {
				continue
			}
			label := map[string]string{"raw via router": "raw node → router → node", "bgp racks": "fjord bgp pod → pod (no encapsulation)", "vxlan racks": "fjord vxlan pod → pod (same racks)"}[name]
			ratio := "—"
			if raw != nil && name != "raw via router" {
				ratio = fmt.Sprintf("**%.0f%%**", 100*benchkit.Median(c.Gbps)/benchkit.Median(raw.Gbps))
			}
			p("| %s | %d | %d | %.2f | %.2f – %.2f | %s | %.0f |\n", label, streams, c.MTU, benchkit.Median(c.Gbps), slices.Min(c.Gbps), slices.Max(c.Gbps), ratio, benchkit.Median(c.Retr))
		}
	}
	p("\n%s\n", r.rankNote())
	p("%s", runsTable(r.Throughput))
	p("### Convergence\n\n")
	p("On `benchb`, %d rounds, each a death then a join of node n3 (rack 1), measured by polling `ip route` every 10 ms in the namespaces named. "+
		"Sessions use fjord's defaults: hold time 9 s (keepalives every 3 s), graceful restart 120 s, no RFC 8538 N bit, so a hold-timer expiry withdraws at once.\n\n", convergenceRounds)
	p("| Event | Measured until | Median s | Min – max s |\n|---|---|---:|---:|\n")
	if len(r.Dead) > 0 {
		p("| node death: n3's link cut (no FIN, no NOTIFICATION) | its pod CIDR gone from the router and from n1 and n2 | %.2f | %.2f – %.2f |\n", benchkit.Median(r.Dead), slices.Min(r.Dead), slices.Max(r.Dead))
	}
	if len(r.Join) > 0 {
		p("| node join: n3 deleted, then its agent started (register, claim a pod CIDR, open the session, announce) | n1 and n2 route to its new pod CIDR | %.2f | %.2f – %.2f |\n", benchkit.Median(r.Join), slices.Min(r.Join), slices.Max(r.Join))
	}
	p("\nA death is detected by the router's hold timer: the last keepalive arrived up to 3 s before the cut, so expect 6–9 s, then the withdrawal propagates in milliseconds. " +
		"The lab's nodes reach etcd through the store relay on the underlay, so the cut also stops the node's Lease renewals: n1 and n2 drop its routes at the Lease's expiry (4 s in the lab) or the hold timer, whichever comes first; the router only at its hold timer, which therefore sets the time measured here.\n")
	return s.String()
}
