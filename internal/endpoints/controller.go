package endpoints

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
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

// writer is what the controller writes through; *store.Store implements it.
type writer interface {
	Apply(ctx context.Context, objs []objects.Object) ([]store.ApplyResult, error)
	Delete(ctx context.Context, k objects.Kind, namespace, name string) error
}

// Controller keeps the managed EndpointSlices current while it holds the election.
type Controller struct {
	st     *store.Store
	w      writer
	cfg    Config
	log    *slog.Logger
	leader atomic.Bool
}

// New returns a controller on a store. log nil means slog.Default().
func New(st *store.Store, cfg Config, log *slog.Logger) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Controller{st: st, w: st, cfg: cfg.withDefaults(), log: log.With("component", "endpoints")}, nil
}

// Leading reports whether this controller currently holds the election and writes.
func (c *Controller) Leading() bool { return c.leader.Load() }

// ElectionKey is the etcd key prefix the controllers campaign on.
func ElectionKey(st *store.Store) string { return st.Prefix() + "_fjord/election/endpoints" }

// Run campaigns for leadership and, while leading, keeps the slices current; after
// losing leadership (session expired, store unreachable) it campaigns again. It returns
// nil when ctx ends, after handing leadership over.
func (c *Controller) Run(ctx context.Context) error {
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
