package controller

import (
	"sort"
	"sync"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// cache holds the current objects of one kind, by namespace/name.
type cache struct {
	mu     sync.Mutex
	objs   map[string]objects.Object
	synced bool // listed at least once
}

func newCache() *cache { return &cache{objs: map[string]objects.Object{}} }

func objKey(o objects.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// replace sets the contents from a List.
func (c *cache) replace(objs []objects.Object) {
	m := make(map[string]objects.Object, len(objs))
	for _, o := range objs {
		m[objKey(o)] = o
	}
	c.mu.Lock()
	c.objs, c.synced = m, true
	c.mu.Unlock()
}

// apply applies one watch event.
func (c *cache) apply(ev store.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Type == store.Delete {
		delete(c.objs, objKey(ev.Object))
		return
	}
	c.objs[objKey(ev.Object)] = ev.Object
}

// list returns the objects sorted by key, and whether the kind was listed.
func (c *cache) list() ([]objects.Object, bool) {
	c.mu.Lock()
	out := make([]objects.Object, 0, len(c.objs))
	for _, o := range c.objs {
		out = append(out, o)
	}
	synced := c.synced
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return objKey(out[i]) < objKey(out[j]) })
	return out, synced
}

// typed converts cached objects to their concrete type.
func typed[T any](objs []objects.Object) []T {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
