package status

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
)

// KubeWriter writes status through the API's status subresource.
type KubeWriter struct{ Client kubernetes.Interface }

// UpdateIngressStatus implements Writer.
func (w KubeWriter) UpdateIngressStatus(ctx context.Context, ing *networkingv1.Ingress) error {
	_, err := w.Client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, ing, metav1.UpdateOptions{FieldManager: "fjord-ingress"})
	return err
}

// StoreWriter writes status into fjord's store; a re-applied manifest without status
// keeps it (store.Apply does).
type StoreWriter struct{ Store *store.Store }

var ingressResource = schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}

// UpdateIngressStatus implements Writer, failing with a conflict if the Ingress
// changed since ing was read.
func (w StoreWriter) UpdateIngressStatus(ctx context.Context, ing *networkingv1.Ingress) error {
	k, _ := w.Store.Kinds().ByName("Ingress")
	_, err := w.Store.Update(ctx, k, ing.Namespace, ing.Name, func(o objects.Object) (bool, error) {
		cur := o.(*networkingv1.Ingress)
		if cur.ResourceVersion != ing.ResourceVersion {
			return false, apierrors.NewConflict(ingressResource, ing.Name, errors.New("changed since read"))
		}
		cur.Status = ing.Status
		return true, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile
	}
	return err
}

// Static returns fixed addresses (--publish-status-address).
func Static(addrs []string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) { return addrs, nil }
}

// labelsPerPod differ between pods of one workload, which are matched without them:
// the revision labels change with every rollout of a DaemonSet or Deployment, and the
// API server copies each pod's own node's zone and region onto it (PodTopologyLabels,
// on by default since Kubernetes 1.35), so a DaemonSet's pods in other zones would
// not look like siblings.
var labelsPerPod = []string{"controller-revision-hash", "pod-template-generation", "pod-template-hash",
	"topology.kubernetes.io/zone", "topology.kubernetes.io/region"}

// PodHostIPs returns the host IPs of the running pods of this ingress's workload (the
// pods in namespace carrying this pod's labels), as ingress-nginx does without a
// published Service: with host ports, clients reach the ingress on those nodes. pods
// is an informer on the namespace's pods; pass it as Config.Changes too, so that the
// status follows the pods as they come and go.
func PodHostIPs(pods cache.SharedIndexInformer, namespace, pod string) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
			return nil, fmt.Errorf("pods of %s not listed yet: %w", namespace, context.Cause(ctx))
		}
		self, ok := source.Get[*corev1.Pod](pods, namespace, pod)
		if !ok {
			return nil, fmt.Errorf("own pod %s/%s not found", namespace, pod)
		}
		match := maps.Clone(self.Labels)
		for _, l := range labelsPerPod {
			delete(match, l)
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("own pod %s/%s has no labels to find its siblings by", namespace, pod)
		}
		siblings := labels.SelectorFromSet(match)
		var out []string
		for _, p := range source.ListNamespace[*corev1.Pod](pods, namespace) {
			if siblings.Matches(labels.Set(p.Labels)) && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Status.HostIP != "" {
				out = append(out, p.Status.HostIP)
			}
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
}

// SplitAddresses parses a comma-separated --publish-status-address.
func SplitAddresses(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
