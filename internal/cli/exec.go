package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/netnsexec"
	"github.com/fjord-net/fjord/internal/resolve"
)

func newExecCommand(g *globals) *cobra.Command {
	var namespace string
	var hostSys bool
	cmd := &cobra.Command{
		Use:   "exec POD -- COMMAND [ARG...]",
		Short: "Run a command inside a pod's network namespace (works while the store is down)",
		Long: `Runs COMMAND with the node's tools inside POD's network namespace, like the seed's
'nsenter -t PID -n CMD' recipe in one step, and like 'ip netns exec': the command gets
a private mount namespace with /sys mounted for the pod's namespace, so
/sys/class/net/eth0/mtu is the pod's MTU.

The pod is found in this machine's own records first (the CNI result cache the
container runtime keeps, the lab's state directory), so exec works when etcd is down;
the store is asked only for pods those records do not know. POD is a name,
NAMESPACE/NAME or the pod's IP. Examples:

  fjord exec echo-n1 -- ip addr show
  fjord exec echo-n1 -- cat /sys/class/net/eth0/mtu
  fjord exec echo-n1 -- ping -c1 -M do -s 1422 10.244.1.2`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("usage: fjord exec POD -- COMMAND [ARG...]")
			}
			path, err := g.podNetns(cmd.Context(), namespace, args[0])
			if err != nil {
				return err
			}
			return netnsexec.ExecWith(path, args[1:], nil, netnsexec.Options{Sysfs: !hostSys})
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's namespace")
	cmd.Flags().BoolVar(&hostSys, "host-sys", false, "keep the host's /sys (no private mount namespace)")
	return cmd
}

// podNetns finds a pod's network namespace: local records first, then the store
// (bounded, so a dead store costs seconds, not a hang).
func (g *globals) podNetns(ctx context.Context, namespace, ref string) (string, error) {
	local := resolve.NewLocal(g.localConfig())
	if p, err := resolve.FindPod(ctx, local, namespace, ref); err == nil && p.Netns != "" {
		return p.Netns, nil
	}
	src := g.openSources(ctx, 3*time.Second)
	defer src.close()
	if src.Remote == nil {
		return "", fmt.Errorf("pod %s is not in this machine's records (CNI cache, lab state) and the store did not answer: %v", ref, src.storeErr)
	}
	p, err := resolve.FindPod(ctx, src, namespace, ref)
	if err != nil {
		if errors.Is(err, resolve.ErrNotFound) {
			return "", fmt.Errorf("%w (searched this machine's records and the store)", err)
		}
		return "", err
	}
	if p.Netns == "" {
		return "", fmt.Errorf("pod %s has no network namespace on this machine (node %q; run exec on that node)", p.Key(), p.Node)
	}
	return p.Netns, nil
}
