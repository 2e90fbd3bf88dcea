package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/kubeclient"
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
			var pods []lab.EchoTarget
			if c.Kubernetes {
				pods, err = c.KubeEchoPods(cmd.Context())
			} else {
				g.endpoints = "unix://" + c.EtcdSocket()
				st, closeStore, cerr := g.connect(cmd.Context())
				if cerr != nil {
					return cerr
				}
				defer closeStore()
				pods, err = lab.StoreEchoPods(cmd.Context(), st)
			}
			if err != nil {
				return err
			}
			res, err := lab.CheckPods(cmd.Context(), pods)
			lab.PrintMatrix(g.streams.Out, res)
			return err
		},
	}, newLabRestartAgentCommand(g, &name, &runRoot), newLabKubeletCommand(g), newLabStoreRelayCommand(g), newLabKubectlCommand(g, &name, &runRoot),
		newLabFaultCommand(g, &name, &runRoot), newLabFaultHogCommand(), newLabRouterCommand(g, &name, &runRoot))
	return cmd
}

func newLabUpCommand(g *globals, name, runRoot *string) *cobra.Command {
	c := lab.Default()
	var subnet, mode, clusterCIDR string
	var noDemo bool
	c.Runtime = lab.RuntimeFjord
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up the lab (default: 3 vxlan nodes with one echo pod each)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Name, c.RunRoot, c.Demo, c.Mode = *name, *runRoot, !noDemo, podnet.Mode(mode)
			if c.Racks > 1 && c.Router == "" {
				c.Router = lab.RouterBIRD
			}
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
			if c.Kubernetes {
				out := g.streams.Out
				targets := []kubebuild.Target{kubebuild.KubeAPIServer, kubebuild.KubeControllerManager, kubebuild.KubeScheduler, kubebuild.Kubectl}
				if c.Runtime == lab.RuntimeContainerd {
					targets = append(targets, kubebuild.Kubelet)
				}
				bins, err := kubebuild.Ensure(ctx, kubebuild.Config{Logf: func(f string, a ...any) { fmt.Fprintf(out, "  kubebuild: "+f+"\n", a...) }}, targets...)
				if err != nil {
					return fmt.Errorf("building Kubernetes for --kubernetes: %w", err)
				}
				c.KubeBin = bins.Dir
			}
			return lab.Up(ctx, c, g.streams.Out)
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Nodes, "nodes", c.Nodes, "number of nodes")
	f.IntVar(&c.Zones, "zones", 0, "with --runtime containerd: spread the nodes over this many zones, round-robin (default one zone per node)")
	f.StringVar(&subnet, "subnet", c.Subnet.String(), "underlay subnet, inside 198.18.0.0/15")
	f.IntVar(&c.UnderlayMTU, "underlay-mtu", c.UnderlayMTU, "MTU of the underlay links")
	f.IntVar(&c.PodMTU, "mtu", 0, "pod MTU override (default: underlay MTU minus vxlan overhead)")
	f.StringVar(&mode, "mode", string(c.Mode), "pod network mode: vxlan, routed or bgp")
	f.IntVar(&c.Racks, "racks", 0, "an L3 underlay: this many subnets (from --subnet on) joined by a router namespace (docs/bgp.md)")
	f.StringVar(&c.Router, "router", "", "with --racks: the routing daemon of the router namespace: bird (default) or frr")
	f.StringVar(&c.Encap, "encap", "", "bgp mode: the agents' --encap (never, cross-subnet, always; default never)")
	f.StringVar(&clusterCIDR, "cluster-cidr", c.ClusterCIDR.String(), "pod network")
	f.BoolVar(&noDemo, "no-demo", false, "do not start the demo workload")
	f.StringVar(&c.ProxyConfig, "proxy-config", "", "KubeProxyConfiguration file handed to every agent (fjord agent --config)")
	f.BoolVar(&c.Kubernetes, "kubernetes", false, "run a real control plane (kube-apiserver, controller-manager, scheduler, built from the k8s.io/kubernetes module) that fjord reads")
	f.BoolVar(&c.NoIngress, "no-ingress", false, "with --runtime containerd: leave out fjord's ingress DaemonSet (its host ports 80/443 shadow host-network servers)")
	f.StringVar(&c.Runtime, "runtime", c.Runtime, "with --kubernetes: what runs pods: fjord (the lab's runtime as kubelet) or containerd (real kubelets)")
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
			c, ctx, stop, err := labProcess(cmd, runRoot, labName)
			if err != nil {
				return err
			}
			defer stop()
			log := g.logger()
			var src *source.Source
			var api kubelet.API
			if kubeconfig := g.kubeconfig; kubeconfig != "" {
				i, err := c.NodeIndex(node)
				if err != nil {
					return err
				}
				rc, err := kubeclient.Config(kubeconfig)
				if err != nil {
					return err
				}
				client, err := kubeclient.New(rc, "lab-kubelet")
				if err != nil {
					return err
				}
				src = source.New(source.NewKubernetes(client), 0)
				api = kubelet.NewKubeAPI(client, src, node, c.NodeAddr(i).String(), log)
			} else {
				st, closeStore, err := g.connect(ctx)
				if err != nil {
					return err
				}
				defer closeStore()
				src = source.New(source.NewStore(st), 0)
				api = kubelet.NewStoreAPI(st, src, node)
			}
			dir := filepath.Join(c.StateDir(), "nodes", node)
			k := kubelet.New(kubelet.Config{
				NodeName: node, NetnsPrefix: c.PodNSPrefix(), CNIConfDir: filepath.Join(dir, "cni", "net.d"),
				CNIPath: c.CNIPath(), StateDir: filepath.Join(dir, "kubelet"), Binary: c.Binary,
			}, api, log)
			src.Start(ctx)
			return k.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&node, "node-name", "", "node to run pods for")
	cmd.Flags().StringVar(&labName, "lab", "lab", "lab name")
	cmd.Flags().StringVar(&runRoot, "run-root", "/run/fjord", "parent of the lab's state directory")
	return cmd
}

func newLabStoreRelayCommand(g *globals) *cobra.Command {
	var labName, runRoot string
	cmd := &cobra.Command{
		Use:    "store-relay",
		Short:  "The lab's store for its nodes, through the underlay (started by 'lab up')",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, stop, err := labProcess(cmd, runRoot, labName)
			if err != nil {
				return err
			}
			defer stop()
			return lab.ServeStoreRelay(ctx, c, g.logger())
		},
	}
	cmd.Flags().StringVar(&labName, "lab", "lab", "lab name")
	cmd.Flags().StringVar(&runRoot, "run-root", "/run/fjord", "parent of the lab's state directory")
	return cmd
}

// labProcess is how the hidden commands 'lab up' starts begin: the lab's configuration,
// and a context that ends on SIGINT or SIGTERM ('lab down').
func labProcess(cmd *cobra.Command, runRoot, labName string) (lab.Config, context.Context, context.CancelFunc, error) {
	c, err := lab.Load(runRoot, labName)
	if err != nil {
		return c, nil, nil, fmt.Errorf("lab %q: %w", labName, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	return c, ctx, stop, nil
}

// newLabKubectlCommand runs the lab's kubectl as its admin.
func newLabKubectlCommand(g *globals, name, runRoot *string) *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl [ARGS...]",
		Short:              "Run kubectl against the Kubernetes lab (as its admin)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Flags are not parsed (they are kubectl's), so take --name here.
			labName, rest := *name, args
			if len(rest) >= 2 && rest[0] == "--name" {
				labName, rest = rest[1], rest[2:]
			}
			c, err := lab.Load(*runRoot, labName)
			if err != nil {
				return fmt.Errorf("lab %q is not up", labName)
			}
			if !c.Kubernetes {
				return fmt.Errorf("lab %q runs fjord's own store, not Kubernetes: use 'fjord get', or 'fjord lab up --kubernetes'", labName)
			}
			kc := exec.CommandContext(cmd.Context(), filepath.Join(c.KubeBin, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig("admin")}, rest...)...)
			kc.Stdin, kc.Stdout, kc.Stderr = g.streams.In, g.streams.Out, g.streams.Err
			if err := kc.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					return exitCode(ee.ExitCode())
				}
				return err
			}
			return nil
		},
	}
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
