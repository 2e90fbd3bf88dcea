package endpoints

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	toolscache "k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
)

// Config is everything the controller is told.
type Config struct {
	Identity string        // this node's name; stored as the election's value
	Resync   time.Duration // period of a full recompute of every service; 0 = 5m
	// SessionTTL is how long a crashed leader keeps leadership before another node takes
	// over (a clean stop hands over at once); whole seconds, 0 = 10s.
	SessionTTL time.Duration
	// MinInterval bounds the sync rate: changes arriving within it are coalesced into one
	// sync. 0 = 100ms.
	MinInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Resync <= 0 {
		c.Resync = 5 * time.Minute
	}
	if c.SessionTTL < time.Second {
		c.SessionTTL = 10 * time.Second
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Identity == "" {
		return errors.New("endpoints controller: Identity (the node name) is required")
	}
	return nil
}

// writer is what the controller writes through; *store.Store implements it. Every
// write carries the fence of the election term it was planned in.
type writer interface {
	ApplyFenced(ctx context.Context, objs []objects.Object, f store.Fence) ([]store.ApplyResult, error)
	DeleteFenced(ctx context.Context, k objects.Kind, namespace, name string, f store.Fence) error
}

// Controller keeps the managed EndpointSlices current while it holds the election.
type Controller struct {
	st     *store.Store
	w      writer
	cfg    Config
	log    *slog.Logger
	leader atomic.Bool
	cc     *cache // fed by the informers for the controller's whole life
	kick   chan struct{}
	// synced reports, per watched kind, whether its informer's initial list has
	// reached the cache.
	synced map[string]func() bool
}

// New returns a controller writing to st and reading Services, Pods, node Leases and
// EndpointSlices from src's shared informers (which the caller starts). log nil means
// slog.Default().
func New(st *store.Store, src *source.Source, cfg Config, log *slog.Logger) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{st: st, w: st, cfg: cfg.withDefaults(), log: log.With("component", "endpoints"),
		cc: newCache(nil), kick: make(chan struct{}, 1), synced: map[string]func() bool{}}
	informers := map[string]toolscache.SharedIndexInformer{
		kindService: src.Services(), kindPod: src.Pods(), kindLease: src.Leases(LeaseNamespace), kindSlice: src.EndpointSlices(),
	}
	for kind, inf := range informers {
		reg, err := inf.AddEventHandler(handler(c.cc, c.poke))
		if err != nil {
			return nil, err
		}
		c.synced[kind] = reg.HasSynced
	}
	return c, nil
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// handler feeds every informer event into the cache. An update whose resourceVersion
// did not change (a resync replay) dirties nothing.
func handler(cc *cache, poke func()) toolscache.ResourceEventHandler {
	put := func(o any, deleted bool) {
		if tomb, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
			o = tomb.Obj
		}
		if obj, ok := o.(objects.Object); ok {
			cc.update(obj, deleted)
			poke()
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { put(o, false) },
		UpdateFunc: func(old, cur any) {
			if o, ok := old.(objects.Object); ok && o.GetResourceVersion() == cur.(objects.Object).GetResourceVersion() {
				return
			}
			put(cur, false)
		},
		DeleteFunc: func(o any) { put(o, true) },
	}
}

// Leading reports whether this controller currently holds the election and writes.
func (c *Controller) Leading() bool { return c.leader.Load() }

// ElectionKey is the etcd key prefix the controllers campaign on.
func ElectionKey(st *store.Store) string { return st.Prefix() + "_fjord/election/endpoints" }

// Run campaigns for leadership and, while leading, keeps the slices current; after
// losing leadership (session expired, store unreachable) it campaigns again. It returns
// nil when ctx ends, after handing leadership over.
func (c *Controller) Run(ctx context.Context) error {
	for kind, synced := range c.synced {
		go func() {
			if toolscache.WaitForCacheSync(ctx.Done(), synced) {
				c.cc.markListed(kind)
				c.poke()
			}
		}()
	}
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := c.term(ctx)
		if ctx.Err() != nil {
			break
		}
		c.log.Warn("endpoints election term ended; campaigning again", "err", err, "in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	return nil
}
