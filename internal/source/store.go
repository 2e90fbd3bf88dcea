package source

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// Store is the Backend over fjord's etcd store.
type Store struct{ st *store.Store }

// NewStore returns the etcd backend.
func NewStore(st *store.Store) Store { return Store{st: st} }

// Name implements Backend.
func (Store) Name() string { return "etcd" }

// ListerWatcher implements Backend.
func (s Store) ListerWatcher(k objects.Kind, namespace string, sel fields.Selector) (cache.ListerWatcher, error) {
	if err := checkSelector(k, sel); err != nil {
		return nil, err
	}
	return &storeLW{st: s.st, kind: k, namespace: namespace, sel: sel}, nil
}

// storeLW lists and watches one kind in the store, in the API's shapes: a list with
// the store revision as its resourceVersion, a watch from that revision, and 410 Gone
// when the revision has been compacted away (the reflector then lists again).
type storeLW struct {
	st        *store.Store
	kind      objects.Kind
	namespace string
	sel       fields.Selector
}

// IsWatchListSemanticsUnSupported tells the reflector to list, then watch: the store
// has no streaming list.
func (*storeLW) IsWatchListSemanticsUnSupported() bool { return true }

func (lw *storeLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	return lw.ListWithContext(context.Background(), opts)
}

func (lw *storeLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return lw.WatchWithContext(context.Background(), opts)
}

// ListWithContext reads everything at once; limit and continue are ignored (the
// reflector's pager is content with one page).
func (lw *storeLW) ListWithContext(ctx context.Context, _ metav1.ListOptions) (runtime.Object, error) {
	objs, rev, err := lw.st.List(ctx, lw.kind, lw.namespace)
	if err != nil {
		return nil, err
	}
	l := &objectList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)}}
	l.SetGroupVersionKind(schema.FromAPIVersionAndKind(lw.kind.APIVersion, lw.kind.Name+"List"))
	for _, o := range objs {
		if lw.sel.Matches(fieldsOf(o)) {
			l.Items = append(l.Items, o)
		}
	}
	return l, nil
}

// WatchWithContext streams changes from opts.ResourceVersion on, for at most
// opts.TimeoutSeconds (the reflector then watches again from where it was).
//
// The revision itself is included. Objects applied together share one revision, and
// the reflector resumes from the resourceVersion of the last event it took: a watch
// that ended halfway through one revision's events must resume with the rest of them.
// Events of that revision it already has come again; an informer drops an update
// whose resourceVersion it holds, and at worst reports a deletion twice.
func (lw *storeLW) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	from, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
	if err != nil || from <= 0 {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("watch %s: resourceVersion %q is not a store revision", lw.kind.Resource, opts.ResourceVersion))
	}
	wctx, cancel := context.WithCancel(ctx)
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		wctx, cancel = context.WithTimeout(ctx, time.Duration(*opts.TimeoutSeconds)*time.Second)
	}
	events, errc := lw.st.Watch(wctx, lw.kind, lw.namespace, from-1) // Watch starts after its revision
	w := &storeWatch{out: make(chan watch.Event), cancel: cancel}
	go w.pump(wctx, lw, events, errc)
	return w, nil
}

type storeWatch struct {
	out    chan watch.Event
	cancel context.CancelFunc
}

func (w *storeWatch) ResultChan() <-chan watch.Event { return w.out }
func (w *storeWatch) Stop()                          { w.cancel() }

func (w *storeWatch) pump(ctx context.Context, lw *storeLW, events <-chan store.Event, errc <-chan error) {
	defer close(w.out)
	defer w.cancel()
	send := func(ev watch.Event) bool {
		select {
		case w.out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ev := range events {
		if !lw.sel.Matches(fieldsOf(ev.Object)) {
			continue
		}
		t := watch.Modified // the informer adds what it does not hold yet
		if ev.Type == store.Delete {
			t = watch.Deleted
		}
		if !send(watch.Event{Type: t, Object: ev.Object}) {
			// Drain so the store's watch goroutine can finish.
			for range events {
			}
			return
		}
	}
	if err := <-errc; errors.Is(err, rpctypes.ErrCompacted) {
		st := apierrors.NewResourceExpired(fmt.Sprintf("%s: %v", lw.kind.Resource, err)).ErrStatus
		send(watch.Event{Type: watch.Error, Object: &st})
	}
}

// objectList is the List a storeLW returns: the reflector reads its resourceVersion
// and items through apimachinery's meta helpers, which accept runtime.Object items.
type objectList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []runtime.Object
}

func (l *objectList) DeepCopyObject() runtime.Object {
	out := &objectList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]runtime.Object, len(l.Items))
	for i, o := range l.Items {
		out.Items[i] = o.DeepCopyObject()
	}
	return out
}
