package store

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
)

// Mirror keeps a local copy of every object of one kind (in one namespace, or all):
// List, then Watch from the list's revision so no change falls into a gap, and List
// again after any watch failure. While the store is unreachable the copy simply stops
// changing; it never empties.
type Mirror struct {
	st       *Store
	kind     objects.Kind
	ns       string
	log      *slog.Logger
	onChange func()

	mu     sync.Mutex
	objs   map[string]objects.Object // by namespace/name
	synced bool
}

// NewMirror prepares a mirror; onChange is called after every list and every event.
func (s *Store) NewMirror(kind objects.Kind, namespace string, log *slog.Logger, onChange func()) *Mirror {
	if log == nil {
		log = slog.Default()
	}
	return &Mirror{st: s, kind: kind, ns: namespace, log: log, onChange: onChange, objs: map[string]objects.Object{}}
}

// Run keeps the copy current until ctx ends.
func (m *Mirror) Run(ctx context.Context) {
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		list, rev, err := m.st.List(ctx, m.kind, m.ns)
		if err == nil {
			delay = 200 * time.Millisecond
			fresh := make(map[string]objects.Object, len(list))
			for _, o := range list {
				fresh[o.GetNamespace()+"/"+o.GetName()] = o
			}
			m.mu.Lock()
			m.objs, m.synced = fresh, true
			m.mu.Unlock()
			m.onChange()
			events, errc := m.st.Watch(ctx, m.kind, m.ns, rev)
			for ev := range events {
				key := ev.Object.GetNamespace() + "/" + ev.Object.GetName()
				m.mu.Lock()
				if ev.Type == Delete {
					delete(m.objs, key)
				} else {
					m.objs[key] = ev.Object
				}
				m.mu.Unlock()
				m.onChange()
			}
			err = <-errc
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("watch interrupted; keeping the last copy and listing again", "kind", m.kind.Name, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Synced reports whether at least one full List has been mirrored.
func (m *Mirror) Synced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.synced
}

// Objects returns the current copy. The objects are shared: do not modify them.
func (m *Mirror) Objects() []objects.Object {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]objects.Object, 0, len(m.objs))
	for _, o := range m.objs {
		out = append(out, o)
	}
	return out
}
