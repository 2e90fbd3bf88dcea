package lab

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/store"
)

// Status prints the lab's nodes, pods, processes and namespaces.
func Status(ctx context.Context, runRoot, name string, out io.Writer) error {
	c, err := Load(runRoot, name)
	if err != nil {
		if len((Config{Name: name, RunRoot: runRoot}).labNamespaces()) > 0 {
			return fmt.Errorf("lab %q is not up, but leftovers exist: run 'fjord lab down --name %s'", name, name)
		}
		return fmt.Errorf("lab %q is not up ('fjord lab up' starts it)", name)
	}
	fmt.Fprintf(out, "lab %q: %d nodes, %s mode, underlay %v (MTU %d), host %v on %s\n", c.Name, c.Nodes, c.Mode, c.Subnet, c.UnderlayMTU, c.HostAddr(), c.HostLink())
	fmt.Fprintf(out, "ingress: http://%v/ and https://%v/ (node n1; access log %s)\n", c.NodeAddr(1), c.NodeAddr(1), filepath.Join(c.LogDir(), "ingress-access.log"))
	fmt.Fprintf(out, "store: %s (export FJORD_ETCD_ENDPOINTS=%s for other labs than the default)\n\n", etcdserver.SocketEndpoint(c.EtcdSocket()), etcdserver.SocketEndpoint(c.EtcdSocket()))
	st, closeStore, err := c.waitStoreOnce(ctx)
	if err != nil {
		fmt.Fprintf(out, "store not answering: %v\n", err)
	} else {
		defer closeStore()
		printNodes(ctx, out, st)
		fmt.Fprintln(out)
		printPods(ctx, out, st)
		fmt.Fprintln(out)
	}
	procs := c.labProcesses()
	names := make([]string, 0, len(procs))
	for pid, n := range procs {
		names = append(names, fmt.Sprintf("%s (pid %d)", n, pid))
	}
	sort.Strings(names)
	fmt.Fprintf(out, "processes (%d):\n", len(names))
	for _, n := range names {
		fmt.Fprintf(out, "  %s\n", n)
	}
	fmt.Fprintf(out, "network namespaces: %d (ip netns list | grep %s)\n", len(c.labNamespaces()), c.Prefix())
	return nil
}

func (c Config) waitStoreOnce(ctx context.Context) (*store.Store, func(), error) {
	cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{etcdserver.SocketEndpoint(c.EtcdSocket())}})
	if err != nil {
		return nil, nil, err
	}
	return store.New(cli, ""), func() { cli.Close() }, nil
}

func printNodes(ctx context.Context, out io.Writer, st *store.Store) {
	nk, _ := st.Kinds().ByName("Node")
	lk, _ := st.Kinds().ByName("Lease")
	list, _, err := st.List(ctx, nk, "")
	if err != nil {
		fmt.Fprintln(out, "nodes:", err)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tADDRESS\tPOD CIDR\tMODE")
	for _, o := range list {
		n := o.(*corev1.Node)
		status := "NotReady"
		if _, err := st.Get(ctx, lk, "kube-node-lease", n.Name); err == nil {
			status = "Ready"
		}
		addr := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				addr = a.Address
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, status, addr, n.Spec.PodCIDR, n.Annotations["fjord.dev/backend"])
	}
	tw.Flush()
}

func printPods(ctx context.Context, out io.Writer, st *store.Store) {
	pk, _ := st.Kinds().ByName("Pod")
	list, _, err := st.List(ctx, pk, "")
	if err != nil {
		fmt.Fprintln(out, "pods:", err)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tNODE\tSTATUS\tIP")
	for _, o := range list {
		p := o.(*corev1.Pod)
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
	}
	tw.Flush()
}

func printNext(out io.Writer, c Config) {
	flag := ""
	if c.Name != "lab" {
		flag = " --name " + c.Name
	}
	tips := [][2]string{
		{fmt.Sprintf("curl http://%v/", c.NodeAddr(1)), "through the ingress on n1 to the echo pods"},
		{"fjord get nodes -o wide", "nodes, pod CIDRs, vxlan MACs"},
		{"fjord get pods -o wide", "pods and their IPs"},
		{"fjord get svc", "services and their cluster IPs"},
		{"fjord exec echo-n1 -- ip route", "a pod's view of the network"},
		{"fjord exec echo-n1 -- curl -s http://echo-IP-from-get-svc/", "a ClusterIP from inside a pod"},
		{"fjord lab check" + flag, "every pod fetches from every other pod"},
		{"fjord lab restart-agent --kill n1" + flag, "traffic does not notice"},
		{"fjord apply -f my-pod.yaml", fmt.Sprintf("your own pods: spec.nodeName n1..n%d", c.Nodes)},
		{"fjord lab down" + flag, "removes everything the lab created"},
	}
	fmt.Fprintln(out, "\nTry next:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, t := range tips {
		fmt.Fprintf(tw, "  %s\t# %s\n", t[0], t[1])
	}
	tw.Flush()
}

// printNextKubernetes tells what to try on the Kubernetes lab.
func printNextKubernetes(out io.Writer, c Config) {
	flag := ""
	if c.Name != "lab" {
		flag = " --name " + c.Name
	}
	fmt.Fprintf(out, "\nkubectl from this host: export KUBECONFIG=%s (or 'fjord lab kubectl%s ...')\n", c.Kubeconfig("admin"), flag)
	tips := [][2]string{
		{fmt.Sprintf("curl http://%v/", c.NodeAddr(1)), "through the ingress on n1 to the echo pods"},
		{"fjord lab kubectl" + flag + " get nodes -o wide", "the nodes, pod CIDRs from the controller-manager"},
		{"fjord lab kubectl" + flag + " get pods,svc,ingress -o wide", "the demo: a Deployment, its Service and Ingress (with its status address)"},
		{"fjord lab kubectl" + flag + " scale deploy/echo --replicas=6", "the Service follows; fjord's proxy reads the EndpointSlices"},
		{"fjord get nodes -o wide --kubeconfig " + c.Kubeconfig("admin"), "fjord's view of the same API (no flag needed for the default lab)"},
		{"fjord lab check" + flag, "every pod fetches from every other pod"},
		{"fjord lab restart-agent --kill n1" + flag, "traffic does not notice"},
		{"fjord lab down" + flag, "removes everything, control plane included"},
	}
	fmt.Fprintln(out, "\nTry next:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, t := range tips {
		fmt.Fprintf(tw, "  %s\t# %s\n", t[0], t[1])
	}
	tw.Flush()
}
