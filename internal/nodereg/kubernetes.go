package nodereg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
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
	for _, key := range []string{AnnotationBackend, AnnotationNodeIP, AnnotationVTEPMAC, AnnotationBGPASNumber} {
		if v, ok := want.Annotations[key]; ok {
			ann[key] = v
		} else if _, had := n.Annotations[key]; had {
			ann[key] = nil // a merge patch deletes a key set to null
		}
	}
	meta := map[string]any{"annotations": ann}
	if len(id.Labels) > 0 {
		meta["labels"] = id.Labels
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Nodes().Patch(ctx, id.Node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "fjord-agent"})
	return err
}

// PodCIDR returns the Node's first spec.podCIDRs entry of the pool's family. If the
// Node has none after CIDRWait (no controller-manager allocating, or not for this
// family), the agent allocates one itself (see allocate).
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
			p, err := k.allocate(ctx, node, pool)
			if apierrors.IsConflict(err) {
				continue // someone changed the Node: look again
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

// held returns the CIDRs a Node holds or claims.
func held(n *corev1.Node) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range append([]string{n.Spec.PodCIDR, n.Annotations[AnnotationPodCIDRClaim]}, n.Spec.PodCIDRs...) {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// allocate takes a free CIDR of the pool for the node. Each agent writes only its own
// Node, so a resourceVersion guard alone cannot stop two agents from writing the same
// CIDR into two Nodes, and spec.podCIDRs cannot be changed once set. So the agent
// first claims the CIDR in an annotation on its Node, then lists the Nodes again
// (a consistent read): if any other Node holds or claims the same CIDR it withdraws
// and tries again after a random pause; otherwise the CIDR is its own and it writes
// it into spec.podCIDRs. Of two agents claiming one CIDR, the one that lists second
// always sees the other's claim, so at most one of them keeps it (both may withdraw;
// the random choice and pause separate them).
func (k *Kubernetes) allocate(ctx context.Context, node string, pool Pool) (netip.Prefix, error) {
	pause := 20 * time.Millisecond
	for {
		self, others, err := k.nodes(ctx, node)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p, ok := nodeCIDR(self, pool.CIDR.Addr().Is4()); ok {
			return p, nil // the controller-manager (or an earlier run) was faster
		}
		if len(self.Spec.PodCIDRs) > 0 {
			return netip.Prefix{}, Permanent{fmt.Errorf("node %s has podCIDRs %v but none in %v's family; the API allows setting them only once", node, self.Spec.PodCIDRs, pool.CIDR)}
		}
		taken := map[netip.Prefix]bool{}
		waiting := 1 // Nodes without a pod CIDR, this one included: likely contenders
		for _, n := range others {
			for _, p := range held(n) {
				taken[p] = true
			}
			if len(held(n)) == 0 {
				waiting++
			}
		}
		// Keep the claim an earlier run of this agent made, if nobody contests it.
		p, err := netip.ParsePrefix(self.Annotations[AnnotationPodCIDRClaim])
		if err != nil || !cidralloc.InPool(pool.CIDR, pool.Bits, p) || taken[p] {
			var ok bool
			if p, ok = pickFree(pool, taken, waiting); !ok {
				return netip.Prefix{}, Permanent{fmt.Errorf("no free /%d left in cluster CIDR %v", pool.Bits, pool.CIDR)}
			}
		}
		if err := k.setClaim(ctx, node, p.String()); err != nil {
			return netip.Prefix{}, err
		}
		contested, err := k.contested(ctx, node, p)
		if err != nil {
			return netip.Prefix{}, err
		}
		if !contested {
			return p, k.commit(ctx, node, p)
		}
		if err := k.setClaim(ctx, node, nil); err != nil {
			return netip.Prefix{}, err
		}
		k.log.Info("another node claimed the same pod CIDR; trying again", "node", node, "podCIDR", p)
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(pause)))):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// pickFree picks one of the first n free CIDRs at random: agents of a whole cluster
// starting at once then mostly claim different ones, yet the pool fills from its
// start.
func pickFree(pool Pool, taken map[netip.Prefix]bool, n int) (netip.Prefix, bool) {
	var free []netip.Prefix
	for p := range cidralloc.Subnets(pool.CIDR, pool.Bits) {
		if !taken[p] {
			if free = append(free, p); len(free) == n {
				break
			}
		}
	}
	if len(free) == 0 {
		return netip.Prefix{}, false
	}
	return free[rand.IntN(len(free))], true
}

// nodes lists every Node (a consistent read), the node's own apart.
func (k *Kubernetes) nodes(ctx context.Context, node string) (self *corev1.Node, others []*corev1.Node, err error) {
	list, err := k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	for i := range list.Items {
		if n := &list.Items[i]; n.Name == node {
			self = n
		} else {
			others = append(others, n)
		}
	}
	if self == nil {
		return nil, nil, apierrors.NewNotFound(corev1.Resource("nodes"), node)
	}
	return self, others, nil
}

// contested reports whether a Node other than node holds or claims p.
func (k *Kubernetes) contested(ctx context.Context, node string, p netip.Prefix) (bool, error) {
	_, others, err := k.nodes(ctx, node)
	if err != nil {
		return false, err
	}
	for _, n := range others {
		if slices.Contains(held(n), p) {
			return true, nil
		}
	}
	return false, nil
}

// setClaim writes the claim annotation (a string) or removes it (nil).
func (k *Kubernetes) setClaim(ctx context.Context, node string, claim any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationPodCIDRClaim: claim}}})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "fjord-agent"})
	return err
}

// commit writes an uncontested claim into spec.podCIDRs, dropping the annotation in
// the same update. A conflicting update (the kubelet wrote meanwhile) is retried: the
// claim stays valid, as every later claimant of p sees it.
func (k *Kubernetes) commit(ctx context.Context, node string, p netip.Prefix) error {
	for {
		n, err := k.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(n.Spec.PodCIDRs) > 0 {
			// Set meanwhile (the controller-manager): PodCIDR looks again.
			return apierrors.NewConflict(corev1.Resource("nodes"), node, errors.New("spec.podCIDRs set by someone else"))
		}
		upd := n.DeepCopy()
		upd.Spec.PodCIDR = p.String()
		upd.Spec.PodCIDRs = []string{p.String()}
		delete(upd.Annotations, AnnotationPodCIDRClaim)
		_, err = k.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{FieldManager: "fjord-agent"})
		if apierrors.IsConflict(err) {
			continue
		}
		if err == nil {
			k.log.Info("allocated a pod CIDR (no controller-manager set one)", "node", node, "podCIDR", p)
		}
		return err
	}
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
