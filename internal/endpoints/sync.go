package endpoints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// maxTxnObjects keeps one Apply under etcd's default limit of 128 operations per txn.
const maxTxnObjects = 100

// lead runs the sync loop until ctx ends, every write fenced by this term's election.
// Each term replans every service: nothing an earlier leader may have left half
// written is trusted.
func (c *Controller) lead(ctx context.Context, fence store.Fence) {
	cc, kick := c.cc, c.kick
	cc.markAll()
	c.poke()

	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	var retry, graceEnd <-chan time.Time
	delay := 200 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-retry:
			retry = nil
		case <-graceEnd: // a node given time to come back after a stall did not
			graceEnd = nil
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
		if t := cc.nextLivenessChange(); !t.IsZero() {
			graceEnd = time.After(time.Until(t))
		}
		if !ok {
			continue // an informer pokes again once it has listed
		}
		for _, b := range p.Blocked {
			c.log.Warn("an EndpointSlice not managed by fjord holds the name fjord wants; leaving it alone",
				"slice", b.String())
		}
		if err := c.write(ctx, p, fence); err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, store.ErrFenced) {
				cc.markDirty(covered)
				c.log.Warn("another controller holds the election now; this term's writes stop", "err", err)
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
func (c *Controller) write(ctx context.Context, p Plan, fence store.Fence) error {
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
		if _, err := c.w.ApplyFenced(ctx, objs, fence); err != nil {
			return fmt.Errorf("apply %d EndpointSlices: %w", len(objs), err)
		}
	}
	for _, d := range p.Delete {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.w.DeleteFenced(ctx, sliceKind, d.Namespace, d.Name, fence); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete EndpointSlice %s: %w", d, err)
		}
	}
	c.log.Debug("EndpointSlices written", "applied", len(p.Apply), "deleted", len(p.Delete))
	return nil
}
