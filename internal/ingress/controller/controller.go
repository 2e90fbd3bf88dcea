package controller

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/ingress/route"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/syncrunner"
)

// DefaultConfigMap is where ingress-nginx reads its configuration.
const DefaultConfigMap = "ingress-nginx/nginx-configuration"

// DefaultClass is ingress-nginx's default class name.
const DefaultClass = "nginx"

// Sink receives every new Snapshot (proxy.Proxy is one).
type Sink interface {
	Swap(*proxy.Snapshot)
}

// Config configures a Controller. Source and Sink are required.
type Config struct {
	// Source gives the shared informers (fjord's store or the Kubernetes API); the
	// caller starts it.
	Source *source.Source
	Sink   Sink
	// ConfigMap is "namespace/name" of the ingress-nginx ConfigMap;
	// default DefaultConfigMap.
	ConfigMap string
	// Class is the ingress class served; default DefaultClass.
	Class string
	// ControllerNames are the IngressClass controllers served; default
	// DefaultControllerNames.
	ControllerNames []string
	// NumCPU is what worker-processes "auto" resolves to; default
	// runtime.NumCPU().
	NumCPU int
	// MinSyncInterval is the shortest time between two Snapshots; bursts
	// of changes within it are coalesced. Default 100ms.
	MinSyncInterval time.Duration
	Logger          *slog.Logger
}

// Controller follows the objects and feeds Snapshots to the Sink.
type Controller struct {
	cfg            Config
	log            *slog.Logger
	cmNamespace    string
	cmName         string
	ingresses      cache.SharedIndexInformer
	classes        cache.SharedIndexInformer
	services       cache.SharedIndexInformer
	slices         cache.SharedIndexInformer
	secrets        cache.SharedIndexInformer
	configMaps     cache.SharedIndexInformer
	selector       atomic.Pointer[route.ClassSelector] // which Ingresses the last Snapshot served
	certs          *certCache
	config         *configTracker
	runner         *syncrunner.Runner
	synced         atomic.Bool
	problemsMu     sync.Mutex
	reportedIssues map[string]bool
}

// New validates cfg and returns a Controller; Run starts it.
func New(cfg Config) (*Controller, error) {
	if cfg.Source == nil || cfg.Sink == nil {
		return nil, fmt.Errorf("ingress controller: Source and Sink are required")
	}
	if cfg.ConfigMap == "" {
		cfg.ConfigMap = DefaultConfigMap
	}
	ns, name, ok := strings.Cut(cfg.ConfigMap, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("configmap %q: want namespace/name", cfg.ConfigMap)
	}
	if cfg.Class == "" {
		cfg.Class = DefaultClass
	}
	if cfg.ControllerNames == nil {
		cfg.ControllerNames = DefaultControllerNames
	}
	if cfg.NumCPU <= 0 {
		cfg.NumCPU = runtime.NumCPU()
	}
	if cfg.MinSyncInterval == 0 {
		cfg.MinSyncInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	src := cfg.Source
	c := &Controller{
		cfg: cfg, log: cfg.Logger, cmNamespace: ns, cmName: name,
		ingresses: src.Ingresses(), classes: src.IngressClasses(), services: src.Services(),
		slices: src.EndpointSlices(), secrets: src.Secrets(), configMaps: src.ConfigMap(ns, name),
		certs:          newCertCache(),
		config:         newConfigTracker(cfg.ConfigMap, cfg.NumCPU, cfg.Logger),
		runner:         syncrunner.New(max(cfg.MinSyncInterval, 0), 5*time.Minute),
		reportedIssues: map[string]bool{},
	}
	for _, inf := range c.informers() {
		if err := source.OnChange(inf, c.runner.Kick); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Controller) informers() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{c.ingresses, c.classes, c.services, c.slices, c.secrets, c.configMaps}
}

// Serves reports whether the last Snapshot served ing (its class is ours, or it has
// none and one of our classes is the default). False until the first Snapshot.
func (c *Controller) Serves(ing *networkingv1.Ingress) bool {
	sel := c.selector.Load()
	return sel != nil && sel.Selects(ing)
}

// Ingresses is the shared Ingress informer the controller reads.
func (c *Controller) Ingresses() cache.SharedIndexInformer { return c.ingresses }

// Synced reports whether a Snapshot built from a complete view of the
// store has been handed to the Sink.
func (c *Controller) Synced() bool { return c.synced.Load() }

// Run swaps Snapshots until ctx ends, the first once every informer has listed.
func (c *Controller) Run(ctx context.Context) error {
	go func() {
		var synced []cache.InformerSynced
		for _, inf := range c.informers() {
			synced = append(synced, inf.HasSynced)
		}
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			c.runner.Kick()
		}
	}()
	c.runner.Run(ctx, func(bool) error { c.sync(); return nil })
	return nil
}

// sync builds a Snapshot from the informers' caches and swaps it in, once every
// kind has been listed.
func (c *Controller) sync() {
	for _, inf := range c.informers() {
		if !inf.HasSynced() {
			return
		}
	}
	var cm *corev1.ConfigMap
	for _, o := range source.List[*corev1.ConfigMap](c.configMaps) {
		if o.Name == c.cmName {
			cm = o
		}
	}
	secrets := source.List[*corev1.Secret](c.secrets)
	classes := source.List[*networkingv1.IngressClass](c.classes)
	snap, problems := Build(Input{
		Ingresses:       sorted(source.List[*networkingv1.Ingress](c.ingresses)),
		IngressClasses:  sorted(classes),
		Services:        source.List[*corev1.Service](c.services),
		EndpointSlices:  sorted(source.List[*discoveryv1.EndpointSlice](c.slices)),
		Secrets:         secrets,
		Config:          c.config.update(cm),
		Class:           c.cfg.Class,
		ControllerNames: c.cfg.ControllerNames,
	}, c.certs.get)
	sel := classSelector(c.cfg.Class, c.cfg.ControllerNames, classes)
	c.selector.Store(&sel)
	keep := map[types.UID]bool{}
	for _, s := range secrets {
		keep[s.UID] = true
	}
	c.certs.prune(keep)
	c.report(problems)
	c.cfg.Sink.Swap(snap)
	c.synced.Store(true)
}

// sorted orders objects by namespace and name: the informers' caches are maps, and
// Build's conflict resolution and problem lists must not depend on map order.
func sorted[T metav1.Object](objs []T) []T {
	slices.SortFunc(objs, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return objs
}

// report logs each problem once while it persists.
func (c *Controller) report(problems []string) {
	c.problemsMu.Lock()
	defer c.problemsMu.Unlock()
	now := map[string]bool{}
	for _, p := range problems {
		now[p] = true
		if !c.reportedIssues[p] {
			c.log.Warn("ingress problem", "problem", p)
		}
	}
	c.reportedIssues = now
}
