package nodereg

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/internal/cidralloc"
)

// Kubernetes registers the agent's node in a real cluster, where the kubelet owns the
// Node and its Lease.
type Kubernetes struct {
	client kubernetes.Interface
	log    *slog.Logger
	// CIDRWait is how long PodCIDR waits for the controller-manager to set
	// spec.podCIDRs before allocating one itself.
	CIDRWait time.Duration
	// Poll is how often PodCIDR and Register look again while waiting.
	Poll time.Duration
}

// NewKubernetes returns the API's Registrar.
func NewKubernetes(c kubernetes.Interface, log *slog.Logger) *Kubernetes {
	if log == nil {
		log = slog.Default()
	}
	return &Kubernetes{client: c, log: log, CIDRWait: 10 * time.Second, Poll: 500 * time.Millisecond}
}

// getNode waits for the kubelet to create the Node.
func (k *Kubernetes) getNode(ctx context.Context, name string) (*corev1.Node, error) {
	logged := false
	for {
		n, err := k.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return n, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		if !logged {
			k.log.Info("waiting for the kubelet to register the Node", "node", name)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s was never registered: %w", name, ctx.Err())
		case <-time.After(k.Poll):
		}
	}
}

// Register adds fjord's annotations to the Node with a merge patch: nothing else on
// the Node is touched, and no read-modify-write can lose another writer's change.
func (k *Kubernetes) Register(ctx context.Context, id Identity) error {
	n, err := k.getNode(ctx, id.Node)
	if err != nil {
		return err
	}
	want := n.DeepCopy()
	if !setAnnotations(want, id) {
		return nil
	}
	ann := map[string]any{}
	for _, key := range []string{AnnotationBackend, AnnotationNodeIP, AnnotationVTEPMAC} {
		if v, ok := want.Annotations[key]; ok {
			ann[key] = v
		} else if _, had := n.Annotations[key]; had {
			ann[key] = nil // a merge patch deletes a key set to null
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Nodes().Patch(ctx, id.Node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "fjord-agent"})
	return err
}

// PodCIDR returns the Node's first spec.podCIDRs entry of the pool's family. If the
// Node has none after CIDRWait (no controller-manager allocating, or not for this
// family), it takes the first /bits of the pool no Node holds and writes it into the
// Node with an update guarded by the resourceVersion it read: of two agents racing for
// one CIDR, one update fails with a conflict and that agent looks again.
func (k *Kubernetes) PodCIDR(ctx context.Context, node string, pool Pool) (netip.Prefix, error) {
	deadline := time.Now().Add(k.CIDRWait)
	logged := false
	for {
		n, err := k.getNode(ctx, node)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p, ok := nodeCIDR(n, pool.CIDR.Addr().Is4()); ok {
			if !pool.CIDR.Contains(p.Addr()) {
				k.log.Warn("the Node's pod CIDR is outside fjord's cluster CIDR; using it anyway (check --cluster-cidr against the controller-manager's)",
					"node", node, "podCIDR", p, "clusterCIDR", pool.CIDR)
			}
			return p, nil
		}
		if time.Now().After(deadline) {
			p, err := k.allocate(ctx, n, pool)
			if apierrors.IsConflict(err) {
				continue // someone changed the Node (or took the CIDR): look again
			}
			return p, err
		}
		if !logged {
			k.log.Info("waiting for the controller-manager to set the Node's podCIDRs", "node", node, "for", k.CIDRWait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-time.After(k.Poll):
		}
	}
}

func nodeCIDR(n *corev1.Node, v4 bool) (netip.Prefix, bool) {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() == v4 {
			return p.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

func (k *Kubernetes) allocate(ctx context.Context, n *corev1.Node, pool Pool) (netip.Prefix, error) {
	if len(n.Spec.PodCIDRs) > 0 {
		return netip.Prefix{}, Permanent{fmt.Errorf("node %s has podCIDRs %v but none in %v's family; the API allows setting them only once", n.Name, n.Spec.PodCIDRs, pool.CIDR)}
	}
	nodes, err := k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return netip.Prefix{}, err
	}
	taken := map[netip.Prefix]bool{}
	for i := range nodes.Items {
		for _, c := range append([]string{nodes.Items[i].Spec.PodCIDR}, nodes.Items[i].Spec.PodCIDRs...) {
			if p, err := netip.ParsePrefix(c); err == nil {
				taken[p.Masked()] = true
			}
		}
	}
	p, ok := cidralloc.FirstFree(pool.CIDR, pool.Bits, func(p netip.Prefix) bool { return taken[p] })
	if !ok {
		return netip.Prefix{}, Permanent{fmt.Errorf("no free /%d left in cluster CIDR %v", pool.Bits, pool.CIDR)}
	}
	upd := n.DeepCopy()
	upd.Spec.PodCIDR = p.String()
	upd.Spec.PodCIDRs = []string{p.String()}
	if _, err := k.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{FieldManager: "fjord-agent"}); err != nil {
		return netip.Prefix{}, err
	}
	k.log.Info("allocated a pod CIDR (no controller-manager set one)", "node", n.Name, "podCIDR", p)
	return p, nil
}

// KeepAlive returns when ctx ends: the kubelet renews the node's Lease.
func (k *Kubernetes) KeepAlive(ctx context.Context, _ string) error {
	<-ctx.Done()
	return nil
}

// SetCondition patches one condition into the Node's status (conditions merge by
// type), leaving the kubelet's conditions alone.
func (k *Kubernetes) SetCondition(ctx context.Context, node string, c corev1.NodeCondition) error {
	n, err := k.getNode(ctx, node)
	if err != nil {
		return err
	}
	conds := append([]corev1.NodeCondition(nil), n.Status.Conditions...)
	if !setCondition(&conds, c) {
		return nil
	}
	for _, cur := range conds {
		if cur.Type == c.Type {
			c = cur
		}
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{c}}})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Nodes().PatchStatus(ctx, node, patch)
	return err
}
