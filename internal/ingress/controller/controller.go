package controller

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/objects"
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

// Config configures a Controller. Store and Sink are required.
type Config struct {
	Store Store
	Sink  Sink
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

// Controller watches the store and feeds Snapshots to the Sink.
type Controller struct {
	cfg            Config
	log            *slog.Logger
	cmNamespace    string
	cmName         string
	kinds          objects.Registry
	ingresses      *cache
	classes        *cache
	services       *cache
	slices         *cache
	secrets        *cache
	configMaps     *cache
	certs          *certCache
	config         *configTracker
	runner         *syncrunner.Runner
	synced         atomic.Bool
	problemsMu     sync.Mutex
	reportedIssues map[string]bool
}

// New validates cfg and returns a Controller; Run starts it.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Sink == nil {
		return nil, fmt.Errorf("ingress controller: Store and Sink are required")
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
	c := &Controller{
		cfg: cfg, log: cfg.Logger, cmNamespace: ns, cmName: name, kinds: objects.Kinds(),
		ingresses: newCache(), classes: newCache(), services: newCache(),
		slices: newCache(), secrets: newCache(), configMaps: newCache(),
		certs:          newCertCache(),
		config:         newConfigTracker(cfg.ConfigMap, cfg.NumCPU, cfg.Logger),
		runner:         syncrunner.New(max(cfg.MinSyncInterval, 0), 5*time.Minute),
		reportedIssues: map[string]bool{},
	}
	return c, nil
}

// Synced reports whether a Snapshot built from a complete view of the
// store has been handed to the Sink.
func (c *Controller) Synced() bool { return c.synced.Load() }

// Run watches the store and swaps Snapshots until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	watches := []struct {
		kind      string
		namespace string
		cache     *cache
	}{
		{"Ingress", "", c.ingresses},
		{"IngressClass", "", c.classes},
		{"Service", "", c.services},
		{"EndpointSlice", "", c.slices},
		{"Secret", "", c.secrets},
		{"ConfigMap", c.cmNamespace, c.configMaps},
	}
	var wg sync.WaitGroup
	for _, w := range watches {
		k, ok := c.kinds.ByName(w.kind)
		if !ok {
			return fmt.Errorf("ingress controller: the store does not know kind %s", w.kind)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.watchKind(ctx, k, w.namespace, w.cache, c.runner.Kick)
		}()
	}
	c.runner.Run(ctx, func(bool) error { c.sync(); return nil })
	wg.Wait()
	return nil
}

// sync builds a Snapshot from the caches and swaps it in, once every kind
// has been listed.
func (c *Controller) sync() {
	ings, ok1 := c.ingresses.list()
	ics, ok2 := c.classes.list()
	svcs, ok3 := c.services.list()
	eps, ok4 := c.slices.list()
	secs, ok5 := c.secrets.list()
	cms, ok6 := c.configMaps.list()
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return
	}
	var cm *corev1.ConfigMap
	for _, o := range typed[*corev1.ConfigMap](cms) {
		if o.Name == c.cmName {
			cm = o
		}
	}
	secrets := typed[*corev1.Secret](secs)
	snap, problems := Build(Input{
		Ingresses:       typed[*networkingv1.Ingress](ings),
		IngressClasses:  typed[*networkingv1.IngressClass](ics),
		Services:        typed[*corev1.Service](svcs),
		EndpointSlices:  typed[*discoveryv1.EndpointSlice](eps),
		Secrets:         secrets,
		Config:          c.config.update(cm),
		Class:           c.cfg.Class,
		ControllerNames: c.cfg.ControllerNames,
	}, c.certs.get)
	keep := map[types.UID]bool{}
	for _, s := range secrets {
		keep[s.UID] = true
	}
	c.certs.prune(keep)
	c.report(problems)
	c.cfg.Sink.Swap(snap)
	c.synced.Store(true)
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
