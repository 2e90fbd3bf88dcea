package endpoints

import (
	"context"
	"time"

	"github.com/fjord-net/fjord/internal/store"
)

// inform keeps one kind of the cache equal to the store: List, then Watch from the
// list's revision (no gap), and List again after any watch failure. Every change pokes
// the sync loop. It returns when ctx ends.
func (c *Controller) inform(ctx context.Context, kindName string, cc *cache, poke func()) {
	kind, ok := c.st.Kinds().ByName(kindName)
	if !ok {
		panic("endpoints: kind " + kindName + " is not registered")
	}
	ns := ""
	if kindName == kindLease {
		ns = LeaseNamespace
	}
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		list, rev, err := c.st.List(ctx, kind, ns)
		if err == nil {
			delay = 200 * time.Millisecond
			cc.replace(kindName, list)
			poke()
			events, errc := c.st.Watch(ctx, kind, ns, rev)
			for ev := range events {
				cc.update(ev.Object, ev.Type == store.Delete)
				poke()
			}
			// store.Watch may end on ctx without reporting on errc.
			select {
			case err = <-errc:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("watch interrupted; listing again", "kind", kindName, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
