package source

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// List returns every object in an informer's cache as its concrete type. The objects
// are shared with the cache: never modify them.
func List[T any](inf cache.SharedIndexInformer) []T {
	items := inf.GetStore().List()
	out := make([]T, 0, len(items))
	for _, o := range items {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// ListNamespace returns the objects of one namespace.
func ListNamespace[T any](inf cache.SharedIndexInformer, ns string) []T {
	items, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	out := make([]T, 0, len(items))
	for _, o := range items {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// Get returns one object by namespace and name (namespace "" for cluster-scoped kinds).
func Get[T any](inf cache.SharedIndexInformer, namespace, name string) (T, bool) {
	var zero T
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	o, ok, err := inf.GetStore().GetByKey(key)
	if err != nil || !ok {
		return zero, false
	}
	t, ok := o.(T)
	return t, ok
}

// OnChange calls f after every add, real update and delete. Resync replays (an update
// whose resourceVersion did not change) are skipped: consumers that run on changes have
// their own periodic full pass.
func OnChange(inf cache.SharedIndexInformer, f func()) error {
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { f() },
		UpdateFunc: func(old, cur any) {
			if sameVersion(old, cur) {
				return
			}
			f()
		},
		DeleteFunc: func(any) { f() },
	})
	return err
}

// OnObject calls f with each added, updated or deleted object (deleted = true), the
// final state of a deleted one taken out of a tombstone when the watch missed it.
// Resync replays are skipped as in OnChange.
func OnObject[T any](inf cache.SharedIndexInformer, f func(obj T, deleted bool)) error {
	call := func(o any, deleted bool) {
		if tomb, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = tomb.Obj
		}
		if t, ok := o.(T); ok {
			f(t, deleted)
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { call(o, false) },
		UpdateFunc: func(old, cur any) {
			if sameVersion(old, cur) {
				return
			}
			call(cur, false)
		},
		DeleteFunc: func(o any) { call(o, true) },
	})
	return err
}

func sameVersion(a, b any) bool {
	ma, err1 := meta.Accessor(a)
	mb, err2 := meta.Accessor(b)
	return err1 == nil && err2 == nil && ma.GetResourceVersion() != "" && ma.GetResourceVersion() == mb.GetResourceVersion()
}
