package controller

import (
	"context"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// Store is what the controller needs from fjord's store.
type Store interface {
	List(ctx context.Context, k objects.Kind, namespace string) ([]objects.Object, int64, error)
	Watch(ctx context.Context, k objects.Kind, namespace string, fromRev int64) (<-chan store.Event, <-chan error)
}

// watchKind keeps c up to date with every object of kind k in namespace
// ("" = all) until ctx ends: List, Watch from the list's revision, and
// List again after the watch fails. changed is called after every change.
func (ctl *Controller) watchKind(ctx context.Context, k objects.Kind, namespace string, c *cache, changed func()) {
	const maxBackoff = 10 * time.Second
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		objs, rev, err := ctl.cfg.Store.List(ctx, k, namespace)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			ctl.log.Warn("listing failed; keeping the last known state", "kind", k.Name, "error", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		c.replace(objs)
		changed()
		events, errc := ctl.cfg.Store.Watch(ctx, k, namespace, rev)
		for ev := range events {
			c.apply(ev)
			changed()
		}
		select {
		case err = <-errc:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		ctl.log.Info("watch ended; listing again", "kind", k.Name, "error", err)
		if !sleep(ctx, backoff) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
