package store

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fjord-net/fjord/internal/objects"
)

// EventType says what happened to an object.
type EventType int

const (
	Put    EventType = iota // created or modified
	Delete                  // deleted; Object holds the last stored state
)

// Event is one change seen by Watch.
type Event struct {
	Type     EventType
	Object   objects.Object
	Revision int64
}

// Watch streams changes to every object of a kind after revision fromRev (as returned by
// List), so List-then-Watch misses nothing. The channel closes when ctx ends or the
// watch fails (for example when fromRev was compacted); callers then List again. The
// error channel then always delivers exactly one value (ctx.Err() on cancellation).
func (s *Store) Watch(ctx context.Context, k objects.Kind, namespace string, fromRev int64) (<-chan Event, <-chan error) {
	out := make(chan Event)
	errc := make(chan error, 1)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.c.Watch(wctx, s.prefix+k.Prefix(namespace), clientv3.WithPrefix(), clientv3.WithRev(fromRev+1), clientv3.WithPrevKV())
	go func() {
		var final error
		defer func() {
			errc <- final
			close(out)
			cancel()
		}()
		for resp := range wch {
			if err := resp.Err(); err != nil {
				final = err
				return
			}
			for _, ev := range resp.Events {
				if !s.isObjectKey(k, string(ev.Kv.Key)) {
					continue
				}
				e := Event{Revision: ev.Kv.ModRevision}
				var err error
				if ev.Type == clientv3.EventTypeDelete {
					e.Type = Delete
					if ev.PrevKv == nil {
						continue
					}
					e.Object, err = s.decode(k, ev.PrevKv.Value, ev.Kv.ModRevision)
				} else {
					e.Object, err = s.decode(k, ev.Kv.Value, ev.Kv.ModRevision)
				}
				if err != nil {
					final = fmt.Errorf("key %s: %w", ev.Kv.Key, err)
					return
				}
				select {
				case out <- e:
				case <-ctx.Done():
					final = ctx.Err()
					return
				}
			}
		}
		final = ctx.Err()
	}()
	return out, errc
}

// isObjectKey filters out keys that share the prefix but are not objects of the kind
// (for example "pods-extra/..." under "pods").
func (s *Store) isObjectKey(k objects.Kind, key string) bool {
	rest := strings.TrimPrefix(key, s.prefix+k.Resource+"/")
	if rest == key {
		return false
	}
	n := strings.Count(rest, "/")
	if k.Namespaced {
		return n == 1
	}
	return n == 0
}
