package cli

import (
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/kubelet"
	"github.com/fjord-net/fjord/internal/lab"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/source"
)

func newLabCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "A local multi-node cluster of network namespaces",
		Long: `The lab runs a cluster on this machine: an underlay bridge, one network namespace
per node with its fjord agent, an embedded etcd, and pods created the way a container
runtime creates them (a namespace, then the CNI plugin). Underlay addresses come from
198.18.0.0/15; lab namespaces have no route to the outside.`,
	}
	var name, runRoot string
	cmd.PersistentFlags().StringVar(&name, "name", "lab", "lab name (prefixes everything it creates: fjord-NAME-*)")
	cmd.PersistentFlags().StringVar(&runRoot, "run-root", "/run/fjord", "parent of the lab's state directory")
	cmd.AddCommand(newLabUpCommand(g, &name, &runRoot), &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, link, process and file the lab created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return lab.Down(runRoot, name, g.streams.Out)
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "Show the lab's nodes, pods and processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return lab.Status(cmd.Context(), runRoot, name, g.streams.Out)
		},
	}, &cobra.Command{
		Use:   "check",
		Short: "Have every echo pod fetch from every other pod and report the matrix",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := lab.Load(runRoot, name)
			if err != nil {
				return fmt.Errorf("lab %q is not up", name)
			}
			g.endpoints = "unix://" + c.EtcdSocket()
			st, closeStore, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			res, err := lab.CheckPods(cmd.Context(), st)
			lab.PrintMatrix(g.streams.Out, res)
			return err
		},
	}, newLabRestartAgentCommand(g, &name, &runRoot), newLabKubeletCommand(g))
	return cmd
}

func newLabUpCommand(g *globals, name, runRoot *string) *cobra.Command {
	c := lab.Default()
	var subnet, mode, clusterCIDR string
	var noDemo bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up the lab (default: 3 vxlan nodes with one echo pod each)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Name, c.RunRoot, c.Demo, c.Mode = *name, *runRoot, !noDemo, podnet.Mode(mode)
			var err error
			if c.Subnet, err = netip.ParsePrefix(subnet); err != nil {
				return fmt.Errorf("--subnet: %w", err)
			}
			if c.ClusterCIDR, err = netip.ParsePrefix(clusterCIDR); err != nil {
				return fmt.Errorf("--cluster-cidr: %w", err)
			}
			if c.Binary, err = os.Executable(); err != nil {
				return err
			}
			if c.Binary, err = filepath.EvalSymlinks(c.Binary); err != nil {
				return err
			}
			if c.ProxyConfig != "" {
				if c.ProxyConfig, err = filepath.Abs(c.ProxyConfig); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return lab.Up(ctx, c, g.streams.Out)
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Nodes, "nodes", c.Nodes, "number of nodes")
	f.StringVar(&subnet, "subnet", c.Subnet.String(), "underlay subnet, inside 198.18.0.0/15")
	f.IntVar(&c.UnderlayMTU, "underlay-mtu", c.UnderlayMTU, "MTU of the underlay links")
	f.IntVar(&c.PodMTU, "mtu", 0, "pod MTU override (default: underlay MTU minus vxlan overhead)")
	f.StringVar(&mode, "mode", string(c.Mode), "pod network mode: vxlan or routed")
	f.StringVar(&clusterCIDR, "cluster-cidr", c.ClusterCIDR.String(), "pod network")
	f.BoolVar(&noDemo, "no-demo", false, "do not start the demo workload")
	f.StringVar(&c.ProxyConfig, "proxy-config", "", "KubeProxyConfiguration file handed to every agent (fjord agent --config)")
	return cmd
}

func newLabKubeletCommand(g *globals) *cobra.Command {
	var node, labName, runRoot string
	cmd := &cobra.Command{
		Use:    "kubelet",
		Short:  "The lab's pod runtime for one node (started by 'lab up' inside the node's namespace)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := lab.Load(runRoot, labName)
			if err != nil {
				return fmt.Errorf("lab %q: %w", labName, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			st, closeStore, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer closeStore()
			dir := filepath.Join(c.StateDir(), "nodes", node)
			src := source.New(source.NewStore(st), 0)
			k := kubelet.New(kubelet.Config{
				NodeName: node, NetnsPrefix: c.PodNSPrefix(), CNIConfDir: filepath.Join(dir, "cni", "net.d"),
				CNIPath: c.CNIPath(), StateDir: filepath.Join(dir, "kubelet"), Binary: c.Binary,
			}, kubelet.NewStoreAPI(st, src, node), g.logger())
			src.Start(ctx)
			return k.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&node, "node-name", "", "node to run pods for")
	cmd.Flags().StringVar(&labName, "lab", "lab", "lab name")
	cmd.Flags().StringVar(&runRoot, "run-root", "/run/fjord", "parent of the lab's state directory")
	return cmd
}

func newLabRestartAgentCommand(g *globals, name, runRoot *string) *cobra.Command {
	var kill bool
	cmd := &cobra.Command{
		Use:   "restart-agent NODE",
		Short: "Stop a node's agent (--kill: with SIGKILL) and start it again; traffic keeps flowing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := lab.RestartAgent(*runRoot, *name, args[0], kill); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "agent on %s restarted\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&kill, "kill", false, "stop it with SIGKILL, as a crash would")
	return cmd
}
