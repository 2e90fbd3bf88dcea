package trace

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Print writes the result for people.
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "trace %s → %s\n\n", r.Source, r.Target)
	fmt.Fprintln(w, "expected path (kernel state):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range r.Expected {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Place, s.What)
		if s.Problem != "" {
			fmt.Fprintf(tw, "  \t! %s\n", s.Problem)
			if s.Fix != "" {
				fmt.Fprintf(tw, "  \t  fix: %s\n", s.Fix)
			}
		}
	}
	tw.Flush()
	if r.Flow.Proto != "" {
		fmt.Fprintf(w, "\nlive probe: %s (nftables trace in %d namespaces; kernel drops through skb:kfree_skb)\n", r.Flow, len(r.Observed))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, o := range r.Observed {
			var parts []string
			var path []string
			if o.VXLANIn != "" {
				path = append(path, "VXLAN in "+o.VXLANIn)
			}
			if o.In != "" {
				path = append(path, "in "+o.In)
			}
			if o.Out != "" {
				path = append(path, "out "+o.Out)
			}
			if o.VXLANOut != "" {
				path = append(path, "VXLAN out "+o.VXLANOut)
			}
			if len(path) > 0 {
				parts = append(parts, strings.Join(path, " → "))
			}
			parts = append(parts, o.NAT...)
			if len(o.Chains) > 0 {
				parts = append(parts, "chains: "+strings.Join(shortChains(o.Chains), ", "))
			}
			if o.Dropped != nil {
				parts = append(parts, "DROPPED: "+o.Dropped.Where+": "+o.Dropped.Reason)
			}
			if o.Reply {
				parts = append(parts, "reply seen")
			}
			if len(parts) == 0 {
				parts = append(parts, "not seen")
			}
			fmt.Fprintf(tw, "  %s\t%s\n", o.Place, strings.Join(parts, "; "))
		}
		tw.Flush()
		for _, d := range r.KernelDrops {
			fmt.Fprintf(w, "  kernel: %s\n", d)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\n%s\n", r.Verdict.Text)
	if r.Verdict.Fix != "" {
		fmt.Fprintf(w, "fix: %s\n", r.Verdict.Fix)
	}
}

// VXLANPort reads the pod network's VXLAN port from the first node this machine can
// enter (0 when none has fjord's vxlan device: routed mode).
func VXLANPort(nodes []resolve.Node) uint16 {
	for _, n := range nodes {
		if !n.Here {
			continue
		}
		var port uint16
		_ = inns.Do(n.Netns, func() error {
			links, err := netlink.LinkList()
			if err != nil {
				return err
			}
			for _, l := range links {
				if vx, ok := l.(*netlink.Vxlan); ok && strings.HasPrefix(l.Attrs().Name, "fjord.") {
					port = uint16(vx.Port)
				}
			}
			return nil
		})
		if port != 0 {
			return port
		}
	}
	return 0
}

// shortChains groups chain names by table: "ip fjord: a, b; inet filter: c".
func shortChains(keys []string) []string {
	var out []string
	last := ""
	for _, k := range keys {
		f := strings.SplitN(k, " ", 3)
		if len(f) != 3 {
			out = append(out, k)
			continue
		}
		t := f[0] + " " + f[1]
		if t == last && len(out) > 0 {
			out[len(out)-1] += " " + f[2]
			continue
		}
		last = t
		out = append(out, t+": "+f[2])
	}
	return out
}
