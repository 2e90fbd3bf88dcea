package mtu

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fjord-net/fjord/internal/probe"
)

// Failed reports whether any finding is a FAIL.
func (r Report) Failed() bool {
	for _, f := range r.Findings {
		if f.Severity == "FAIL" {
			return true
		}
	}
	return false
}

// Print writes the report as tables.
func (r Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tUNDERLAY MTU\tVXLAN MTU\tPOD MTU")
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", n.Node, n.Underlay, orDash(n.Device), orDash(n.Pod))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tFROM\tTO\tCONFIGURED\tWORKS\tRESULT")
	for _, p := range r.Results {
		from, to := p.From, p.To
		if p.FromPod != "" {
			from += " (" + p.FromPod + ")"
		}
		if p.ToPod != "" {
			to += " (" + p.ToPod + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %v\t%s\t%s\t%s\n", p.Layer, from, to, p.Dst, orDash(p.Expected), orDash(p.Works), verdict(p))
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(r.Findings) == 0 {
		fmt.Fprintf(w, "PASS  every path carries its configured MTU (%d paths in %v)\n", len(r.Results), r.Elapsed.Round(10*time.Millisecond))
		return
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%-4s  %s\n", f.Severity, f.What)
		if f.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintf(w, "\n(%d paths probed in %v)\n", len(r.Results), r.Elapsed.Round(10*time.Millisecond))
}

func verdict(p PairResult) string {
	switch {
	case p.Err != "":
		return "ERROR: " + p.Err
	case !p.Reachable:
		return "UNREACHABLE (no answer at all)"
	case p.Works >= p.Expected:
		return "ok"
	case p.BlackHole():
		return fmt.Sprintf("BLACK HOLE above %d (lost, no ICMP)", p.Works)
	case p.Failure == probe.FragNeeded:
		return fmt.Sprintf("path MTU %d (a hop says so)", p.ReportedMTU)
	default:
		return fmt.Sprintf("above %d: %s", p.Works, p.Failure)
	}
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
