package endpoints

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// maxTxnObjects keeps one Apply under etcd's default limit of 128 operations per txn.
const maxTxnObjects = 100

// lead runs the informers and the sync loop until ctx ends. Each term starts from a
// fresh List, so nothing from an earlier term is trusted.
func (c *Controller) lead(ctx context.Context) {
	cc := newCache()
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, k := range watchedKinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.inform(ctx, k, cc, poke)
		}()
	}

	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	var retry <-chan time.Time
	delay := 200 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-retry:
			retry = nil
		case <-resync.C:
			cc.markAll()
		}
		// Coalesce the burst: whatever arrives within MinInterval joins this sync.
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.MinInterval):
		}
		select {
		case <-kick:
		default:
		}
		p, covered, ok := cc.takePlan()
		if !ok {
			continue // an informer pokes again once it has listed
		}
		for _, b := range p.Blocked {
			c.log.Warn("an EndpointSlice not managed by fjord holds the name fjord wants; leaving it alone",
				"slice", b.String())
		}
		if err := c.write(ctx, p); err != nil {
			if ctx.Err() != nil {
				return
			}
			cc.markDirty(covered)
			c.log.Warn("writing EndpointSlices failed; retrying", "err", err, "in", delay)
			retry = time.After(delay)
			delay = min(2*delay, 5*time.Second)
			continue
		}
		delay = 200 * time.Millisecond
	}
}

// write applies a plan: creates and updates first (one transaction per chunk), deletes
// after. It stops at the first error or as soon as leadership is lost.
func (c *Controller) write(ctx context.Context, p Plan) error {
	if p.Empty() {
		return nil
	}
	sliceKind, _ := c.st.Kinds().ByName(kindSlice)
	for start := 0; start < len(p.Apply); start += maxTxnObjects {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+maxTxnObjects, len(p.Apply))
		objs := make([]objects.Object, 0, end-start)
		for _, es := range p.Apply[start:end] {
			objs = append(objs, es)
		}
		if _, err := c.w.Apply(ctx, objs); err != nil {
			return fmt.Errorf("apply %d EndpointSlices: %w", len(objs), err)
		}
	}
	for _, d := range p.Delete {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.w.Delete(ctx, sliceKind, d.Namespace, d.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete EndpointSlice %s: %w", d, err)
		}
	}
	c.log.Debug("EndpointSlices written", "applied", len(p.Apply), "deleted", len(p.Delete))
	return nil
}
