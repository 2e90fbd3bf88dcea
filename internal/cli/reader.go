package cli

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/lab"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
)

// objectReader is where get (and exec) read objects: fjord's store or a Kubernetes
// API server. Get returns an error wrapping store.ErrNotFound for a missing object.
type objectReader interface {
	Get(ctx context.Context, k objects.Kind, namespace, name string) (objects.Object, error)
	List(ctx context.Context, k objects.Kind, namespace string) ([]objects.Object, int64, error)
	// LiveNodes names the nodes that are alive: a Lease in kube-node-lease (fjord's
	// store) or a Ready condition (Kubernetes).
	LiveNodes(ctx context.Context) (map[string]bool, error)
}

// reader opens where objects come from: --kubeconfig (or $KUBECONFIG) means the
// Kubernetes API; with no store configured, the default lab's API server when that
// lab runs Kubernetes; else fjord's store.
func (g *globals) reader(ctx context.Context) (objectReader, func(), error) {
	kc := g.kubeconfig
	if kc == "" && g.endpoints == "" && os.Getenv("FJORD_ETCD_ENDPOINTS") == "" {
		kc = os.Getenv("KUBECONFIG")
		if c, err := lab.Load("/run/fjord", "lab"); kc == "" && err == nil && c.Kubernetes {
			kc = c.Kubeconfig("admin")
		}
	}
	if kc != "" {
		rc, err := kubeclient.Config(kc)
		if err != nil {
			return nil, nil, err
		}
		client, err := kubeclient.New(rc, "cli")
		if err != nil {
			return nil, nil, err
		}
		dyn, err := kubeclient.NewDynamic(rc, "cli") // fjord's own kinds (the BGP CRDs)
		if err != nil {
			return nil, nil, err
		}
		return kubeReader{client: client, dyn: dyn}, func() {}, nil
	}
	st, done, err := g.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return storeReader{st}, done, nil
}

type storeReader struct{ *store.Store }

func (r storeReader) LiveNodes(ctx context.Context) (map[string]bool, error) {
	return liveNodes(ctx, r.Store)
}

// kubeReader reads through the same list code the informers use.
type kubeReader struct {
	client kubernetes.Interface
	dyn    dynamic.Interface
}

func (r kubeReader) list(ctx context.Context, k objects.Kind, ns string, sel fields.Selector) ([]objects.Object, int64, error) {
	lw, err := source.NewKubernetes(r.client).WithDynamic(r.dyn).ListerWatcher(k, ns, sel)
	if err != nil {
		return nil, 0, err
	}
	list, err := lw.List(metav1.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, 0, err
	}
	out := make([]objects.Object, 0, len(items))
	for _, it := range items {
		if o, ok := it.(objects.Object); ok {
			o.GetObjectKind().SetGroupVersionKind(objects.GVK(k))
			out = append(out, o)
		}
	}
	return out, 0, nil
}

func (r kubeReader) List(ctx context.Context, k objects.Kind, ns string) ([]objects.Object, int64, error) {
	return r.list(ctx, k, ns, fields.Everything())
}

func (r kubeReader) Get(ctx context.Context, k objects.Kind, ns, name string) (objects.Object, error) {
	objs, _, err := r.list(ctx, k, ns, fields.OneTermEqualSelector("metadata.name", name))
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s %q: %w", k.Name, name, store.ErrNotFound)
	}
	return objs[0], nil
}

func (r kubeReader) LiveNodes(ctx context.Context) (map[string]bool, error) {
	nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				live[n.Name] = true
			}
		}
	}
	return live, nil
}
