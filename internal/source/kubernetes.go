package source

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
)

// Kubernetes is the Backend over the Kubernetes API.
type Kubernetes struct {
	client  kubernetes.Interface
	dynamic dynamic.Interface // fjord's own kinds (CRDs); nil = not served
}

// NewKubernetes returns the API backend.
func NewKubernetes(c kubernetes.Interface) Kubernetes { return Kubernetes{client: c} }

// Name implements Backend.
func (Kubernetes) Name() string { return "kubernetes" }

// lister is what every typed client of a kind offers (ServiceInterface, ...).
type lister[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

func listWatch[L runtime.Object](c lister[L], sel fields.Selector) *cache.ListWatch {
	narrow := func(o metav1.ListOptions) metav1.ListOptions {
		o.FieldSelector = sel.String()
		return o
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.List(ctx, narrow(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, narrow(o))
		},
	}
}

// ListerWatcher implements Backend with the kind's typed client.
func (b Kubernetes) ListerWatcher(k objects.Kind, ns string, sel fields.Selector) (cache.ListerWatcher, error) {
	c := b.client
	var lw *cache.ListWatch
	switch k.Name {
	case "Node":
		lw = listWatch(c.CoreV1().Nodes(), sel)
	case "Pod":
		lw = listWatch(c.CoreV1().Pods(ns), sel)
	case "Service":
		lw = listWatch(c.CoreV1().Services(ns), sel)
	case "ConfigMap":
		lw = listWatch(c.CoreV1().ConfigMaps(ns), sel)
	case "Secret":
		lw = listWatch(c.CoreV1().Secrets(ns), sel)
	case "EndpointSlice":
		lw = listWatch(c.DiscoveryV1().EndpointSlices(ns), sel)
	case "Ingress":
		lw = listWatch(c.NetworkingV1().Ingresses(ns), sel)
	case "IngressClass":
		lw = listWatch(c.NetworkingV1().IngressClasses(), sel)
	case "Lease":
		lw = listWatch(c.CoordinationV1().Leases(ns), sel)
	default:
		if k.APIVersion == objects.FjordAPIVersion {
			return b.crdListWatch(k, ns, sel)
		}
		return nil, fmt.Errorf("kind %s is not served from the Kubernetes API", k.Name)
	}
	// The generated informers do the same: use streaming lists where the client and
	// server support them.
	return cache.ToListWatcherWithWatchListSemantics(lw, c), nil
}
