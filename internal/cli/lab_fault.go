package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/lab"
)

// newLabFaultCommand is `fjord lab fault`: inject, list and clear faults.
func newLabFaultCommand(g *globals, name, runRoot *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Break one thing on one node, to practise finding it (and clear it again)",
		Long: `Injects the failures the troubleshooting tools (trace, mtu, doctor, latency) must find:

  fjord lab fault underlay-mtu n3 1400        # n3's link has a smaller MTU: VXLAN black hole
  fjord lab fault icmp-blackhole n3           # n3 drops ICMP fragmentation-needed
  fjord lab fault nft-drop n2 --dst 10.244.2.2:8080 --proto tcp   # a foreign firewall rule
  fjord lab fault partition n3                # the underlay switch drops n3's frames
  fjord lab fault cpu-hog n3 --workers 1      # busy processes competing with n3's softirq work
  fjord lab fault delay n2 20ms               # needs netem, which this kernel lacks: refused, with why
  fjord lab fault list
  fjord lab fault clear [KIND [NODE]]         # restores everything ('lab down' does too)`,
	}
	inject := func(use, short string, args cobra.PositionalArgs, spec func(args []string) (lab.FaultSpec, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				s, err := spec(args)
				if err != nil {
					return err
				}
				f, err := lab.InjectFault(*runRoot, *name, s)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "injected %s: %s\n", s.ID(), f.Summary)
				return nil
			},
		}
	}
	mtu := inject("underlay-mtu NODE MTU", "Lower NODE's underlay link MTU (its eth0 and its switch port)", cobra.ExactArgs(2), func(a []string) (lab.FaultSpec, error) {
		m, err := strconv.Atoi(a[1])
		if err != nil {
			return lab.FaultSpec{}, fmt.Errorf("MTU: %q is not a number", a[1])
		}
		return lab.FaultSpec{Kind: lab.FaultUnderlayMTU, Node: a[0], MTU: m}, nil
	})
	icmp := inject("icmp-blackhole NODE", "Drop ICMP fragmentation-needed / packet-too-big in NODE (breaks path-MTU discovery)", cobra.ExactArgs(1), func(a []string) (lab.FaultSpec, error) {
		return lab.FaultSpec{Kind: lab.FaultICMPBlackhole, Node: a[0]}, nil
	})
	var dst, proto string
	drop := inject("nft-drop NODE --dst ADDR[:PORT]", "Add a foreign nftables table to NODE that drops traffic to ADDR[:PORT]", cobra.ExactArgs(1), func(a []string) (lab.FaultSpec, error) {
		s := lab.FaultSpec{Kind: lab.FaultNFTDrop, Node: a[0], Proto: proto}
		if ap, err := netip.ParseAddrPort(dst); err == nil {
			s.Dst, s.DstPort = ap.Addr(), int(ap.Port())
		} else if ad, err := netip.ParseAddr(dst); err == nil {
			s.Dst = ad
		} else {
			return s, fmt.Errorf("--dst: %q is not an address or address:port", dst)
		}
		return s, nil
	})
	drop.Flags().StringVar(&dst, "dst", "", "destination to drop: ADDR or ADDR:PORT")
	drop.Flags().StringVar(&proto, "proto", "", "tcp or udp (default: both when a port is given)")
	part := inject("partition NODE", "Cut NODE off the underlay: the switch drops its frames", cobra.ExactArgs(1), func(a []string) (lab.FaultSpec, error) {
		return lab.FaultSpec{Kind: lab.FaultPartition, Node: a[0]}, nil
	})
	var workers int
	var duration time.Duration
	hog := inject("cpu-hog NODE", "Run busy processes in NODE's namespace (each keeps one CPU busy)", cobra.ExactArgs(1), func(a []string) (lab.FaultSpec, error) {
		return lab.FaultSpec{Kind: lab.FaultCPUHog, Node: a[0], Workers: workers, Duration: duration}, nil
	})
	hog.Flags().IntVar(&workers, "workers", 1, "busy processes")
	hog.Flags().DurationVar(&duration, "duration", 10*time.Minute, "stop by themselves after this long (at most 1h)")
	delay := inject("delay NODE DELAY", "Delay NODE's underlay traffic (needs the netem qdisc)", cobra.ExactArgs(2), func(a []string) (lab.FaultSpec, error) {
		d, err := time.ParseDuration(a[1])
		if err != nil {
			return lab.FaultSpec{}, fmt.Errorf("DELAY: %w", err)
		}
		return lab.FaultSpec{Kind: lab.FaultDelay, Node: a[0], Delay: d}, nil
	})
	list := &cobra.Command{
		Use: "list", Short: "List injected faults", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			faults, err := lab.Faults(*runRoot, *name)
			if err != nil {
				return err
			}
			if len(faults) == 0 {
				fmt.Fprintln(g.streams.Out, "no faults injected")
				return nil
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FAULT\tNODE\tSINCE\tWHAT")
			for _, f := range faults {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Spec.Kind, f.Spec.Node, f.Created.Format(time.TimeOnly), f.Summary)
			}
			return tw.Flush()
		},
	}
	clear := &cobra.Command{
		Use: "clear [KIND [NODE]]", Short: "Undo injected faults (all, all of a kind, or one)", Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var kind lab.FaultKind
			node := ""
			if len(args) > 0 {
				kind = lab.FaultKind(args[0])
			}
			if len(args) > 1 {
				node = args[1]
			}
			done, err := lab.ClearFaults(*runRoot, *name, kind, node)
			for _, f := range done {
				fmt.Fprintf(g.streams.Out, "cleared %s\n", f.Spec.ID())
			}
			if len(done) == 0 && err == nil {
				fmt.Fprintln(g.streams.Out, "no faults to clear")
			}
			return err
		},
	}
	cmd.AddCommand(mtu, icmp, drop, part, hog, delay, list, clear)
	return cmd
}

// newLabFaultHogCommand is the cpu-hog fault's worker process.
func newLabFaultHogCommand() *cobra.Command {
	var d time.Duration
	cmd := &cobra.Command{
		Use: "fault-hog", Hidden: true, Args: cobra.NoArgs,
		Short: "Keep one CPU busy (the cpu-hog fault's worker)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if d <= 0 || d > time.Hour {
				return errors.New("--duration: must be in (0, 1h]")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			lab.Hog(ctx, d)
			return nil
		},
	}
	cmd.Flags().DurationVar(&d, "duration", time.Minute, "how long")
	return cmd
}
