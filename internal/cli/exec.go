package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/kubelet"
	"github.com/fjord-net/fjord/internal/netnsexec"
)

func newExecCommand(g *globals) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "exec POD -- COMMAND [ARG...]",
		Short: "Run a command inside a pod's network namespace",
		Long: `Runs COMMAND with the node's tools inside POD's network namespace, like the seed's
'nsenter -t PID -n CMD' recipe in one step. Example:

  fjord exec echo-n1 -- ip addr show
  fjord exec echo-n1 -- ping -c1 -M do -s 1422 10.244.1.2`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("usage: fjord exec POD -- COMMAND [ARG...]")
			}
			st, closeStore, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			pk, _ := st.Kinds().ByName("Pod")
			o, err := st.Get(cmd.Context(), pk, namespace, args[0])
			closeStore()
			if err != nil {
				return err
			}
			p := o.(*corev1.Pod)
			path := p.Annotations[kubelet.AnnotationNetns]
			if path == "" {
				return fmt.Errorf("pod %s/%s has no network namespace yet (phase %q)", namespace, args[0], p.Status.Phase)
			}
			return netnsexec.Exec(path, args[1:], nil)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's namespace")
	return cmd
}
