package kubelet

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
)

// API is what the runtime reads and reports through: fjord's store, or the
// Kubernetes API when the lab runs a real control plane.
type API interface {
	// Pods is the informer of the pods bound to this node.
	Pods() cache.SharedIndexInformer
	// UpdatePodStatus applies mutate to the current Pod (if it still has uid) and
	// writes its status when mutate reports a change.
	UpdatePodStatus(ctx context.Context, p *corev1.Pod, mutate func(*corev1.Pod) bool) error
	// PodGone tells the API a pod marked for deletion has stopped (the kubelet's
	// final delete); a no-op where deletion is immediate.
	PodGone(ctx context.Context, p *corev1.Pod) error
	// HostIP is the node's address, reported in every Pod's status.
	HostIP(ctx context.Context) string
	// RunNode keeps the node registered and alive until ctx ends (what a kubelet
	// does); a no-op where the agent registers the node.
	RunNode(ctx context.Context) error
}

// StoreAPI is the runtime's API over fjord's store: the agent registers the Node.
type StoreAPI struct {
	st   *store.Store
	pods cache.SharedIndexInformer
	node string
}

// NewStoreAPI returns the store's API for node, with its pods from src.
func NewStoreAPI(st *store.Store, src *source.Source, node string) *StoreAPI {
	return &StoreAPI{st: st, pods: src.Pods(source.OnNode(node)), node: node}
}

func (a *StoreAPI) Pods() cache.SharedIndexInformer { return a.pods }

func (a *StoreAPI) UpdatePodStatus(ctx context.Context, p *corev1.Pod, mutate func(*corev1.Pod) bool) error {
	kind, _ := a.st.Kinds().ByName("Pod")
	_, err := a.st.Update(ctx, kind, p.Namespace, p.Name, func(o objects.Object) (bool, error) {
		cur := o.(*corev1.Pod)
		if cur.UID != p.UID {
			return false, nil
		}
		return mutate(cur), nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (a *StoreAPI) PodGone(context.Context, *corev1.Pod) error { return nil }

func (a *StoreAPI) HostIP(ctx context.Context) string {
	kind, _ := a.st.Kinds().ByName("Node")
	o, err := a.st.Get(ctx, kind, "", a.node)
	if err != nil {
		return ""
	}
	return internalIP(o.(*corev1.Node))
}

func (a *StoreAPI) RunNode(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}
