package source

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
)

// Backend makes the list-and-watch source of one kind of object.
type Backend interface {
	// ListerWatcher lists and watches objects of kind k in namespace ("" = all)
	// that match sel (fields.Everything() = all).
	ListerWatcher(k objects.Kind, namespace string, sel fields.Selector) (cache.ListerWatcher, error)
	// Name says which backend this is, for logs and errors: "kubernetes" or "etcd".
	Name() string
}

// DefaultResync is how often informers replay their cache to handlers, as
// kube-proxy's configSyncPeriod (15 minutes).
const DefaultResync = 15 * time.Minute

// Source hands out shared informers over one Backend. Informers are created on first
// use and started by Start; an informer asked for after Start is started at once.
type Source struct {
	backend Backend
	resync  time.Duration
	kinds   objects.Registry

	mu        sync.Mutex
	informers map[string]cache.SharedIndexInformer
	ctx       context.Context // set by Start
}

// New returns a Source over b. resync 0 means DefaultResync; negative disables it.
func New(b Backend, resync time.Duration) *Source {
	if resync == 0 {
		resync = DefaultResync
	}
	return &Source{backend: b, resync: max(resync, 0), kinds: objects.Kinds(), informers: map[string]cache.SharedIndexInformer{}}
}

// Backend returns the backend's name: "kubernetes" or "etcd".
func (s *Source) Backend() string { return s.backend.Name() }

// Option narrows an informer.
type Option func(*informerKey)

type informerKey struct {
	kind      string
	namespace string
	selector  fields.Selector
}

func (k informerKey) String() string {
	return k.kind + "|" + k.namespace + "|" + k.selector.String()
}

// InNamespace limits an informer to one namespace.
func InNamespace(ns string) Option { return func(k *informerKey) { k.namespace = ns } }

// WithFields limits an informer to objects whose fields match, e.g.
// fields.OneTermEqualSelector("spec.nodeName", node).
func WithFields(sel fields.Selector) Option { return func(k *informerKey) { k.selector = sel } }

// Informer returns the shared informer for a kind ("Service", "Node", ...), creating
// it on first use. Asking for an unknown kind is a programming error and panics.
func (s *Source) Informer(kind string, opts ...Option) cache.SharedIndexInformer {
	key := informerKey{kind: kind, selector: fields.Everything()}
	for _, o := range opts {
		o(&key)
	}
	k, ok := s.kinds.ByName(kind)
	if !ok {
		panic(fmt.Sprintf("source: unknown kind %q", kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if inf, ok := s.informers[key.String()]; ok {
		return inf
	}
	lw, err := s.backend.ListerWatcher(k, key.namespace, key.selector)
	if err != nil {
		panic(fmt.Sprintf("source: %s: %v", key, err))
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, k.New(), cache.SharedIndexInformerOptions{
		ResyncPeriod:      s.resync,
		Indexers:          cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		ObjectDescription: k.Resource,
	})
	// Nothing fjord reads needs managedFields; at 30,000 Services they are a large
	// share of the cache.
	_ = inf.SetTransform(dropManagedFields)
	s.informers[key.String()] = inf
	if s.ctx != nil {
		go inf.RunWithContext(s.ctx)
	}
	return inf
}

// Start runs every informer created so far until ctx ends; informers created later
// start as they are created.
func (s *Source) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		return
	}
	s.ctx = ctx
	for _, inf := range s.informers {
		go inf.RunWithContext(ctx)
	}
}

// WaitForSync waits until every informer created so far has listed once, or ctx
// ends; it returns an error naming the kinds still waiting.
func (s *Source) WaitForSync(ctx context.Context) error {
	s.mu.Lock()
	all := make(map[string]cache.SharedIndexInformer, len(s.informers))
	for k, inf := range s.informers {
		all[k] = inf
	}
	s.mu.Unlock()
	var synced []cache.InformerSynced
	for _, inf := range all {
		synced = append(synced, inf.HasSynced)
	}
	if cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	var waiting []string
	for k, inf := range all {
		if !inf.HasSynced() {
			waiting = append(waiting, k)
		}
	}
	sort.Strings(waiting)
	return fmt.Errorf("%s source: not synced: %v: %w", s.backend.Name(), waiting, context.Cause(ctx))
}

// Typed shorthands for the kinds fjord reads.

func (s *Source) Nodes() cache.SharedIndexInformer          { return s.Informer("Node") }
func (s *Source) Services() cache.SharedIndexInformer       { return s.Informer("Service") }
func (s *Source) EndpointSlices() cache.SharedIndexInformer { return s.Informer("EndpointSlice") }
func (s *Source) Ingresses() cache.SharedIndexInformer      { return s.Informer("Ingress") }
func (s *Source) IngressClasses() cache.SharedIndexInformer { return s.Informer("IngressClass") }
func (s *Source) Secrets() cache.SharedIndexInformer        { return s.Informer("Secret") }

// Pods returns the Pod informer, narrowed by opts (a node's pods: OnNode).
func (s *Source) Pods(opts ...Option) cache.SharedIndexInformer { return s.Informer("Pod", opts...) }

// Leases returns the Lease informer of one namespace.
func (s *Source) Leases(namespace string) cache.SharedIndexInformer {
	return s.Informer("Lease", InNamespace(namespace))
}

// ConfigMap returns an informer holding one ConfigMap.
func (s *Source) ConfigMap(namespace, name string) cache.SharedIndexInformer {
	return s.Informer("ConfigMap", InNamespace(namespace), WithFields(fields.OneTermEqualSelector("metadata.name", name)))
}

// OnNode narrows a Pod informer to the pods bound to one node.
func OnNode(node string) Option {
	return WithFields(fields.OneTermEqualSelector("spec.nodeName", node))
}

func dropManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil && a.GetManagedFields() != nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}
