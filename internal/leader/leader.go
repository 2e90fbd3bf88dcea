// Package leader elects one process among many, with client-go's leaderelection over a
// coordination Lease, wherever the Lease lives: in the Kubernetes API
// (resourcelock.LeaseLock) or in fjord's store (StoreLock: the same record, written
// with a compare-and-swap on the Lease's resourceVersion). Used for the one writer of
// Ingress status.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// Timing is the election's timing; the zero value means client-go's usual 15s/10s/2s.
type Timing struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.LeaseDuration == 0 {
		t = Timing{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	}
	return t
}

// Run campaigns on lock until ctx ends, calling lead with a context that ends when
// leadership is lost. After losing it, Run campaigns again. A clean stop releases the
// Lease so another candidate takes over at once.
func Run(ctx context.Context, lock resourcelock.Interface, t Timing, log *slog.Logger, lead func(context.Context)) {
	t = t.withDefaults()
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: t.LeaseDuration, RenewDeadline: t.RenewDeadline, RetryPeriod: t.RetryPeriod,
			ReleaseOnCancel: true, Name: lock.Describe(),
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					log.Info("leading", "lease", lock.Describe(), "identity", lock.Identity())
					lead(lctx)
				},
				OnStoppedLeading: func() { log.Info("stopped leading", "lease", lock.Describe()) },
			},
		})
		if err != nil {
			log.Error("leader election misconfigured", "err", err)
			return
		}
		le.Run(ctx)
	}
}

// KubeLock is a Lease in the Kubernetes API.
func KubeLock(c kubernetes.Interface, namespace, name, identity string) resourcelock.Interface {
	return &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name},
		Client:     c.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
}

// StoreLock is a Lease in fjord's store.
func StoreLock(st *store.Store, namespace, name, identity string) resourcelock.Interface {
	k, _ := st.Kinds().ByName("Lease")
	return &storeLock{st: st, kind: k, ns: namespace, name: name, id: identity}
}

type storeLock struct {
	st       *store.Store
	kind     objects.Kind
	ns, name string
	id       string
	rv       string // resourceVersion of the Lease last read or written
}

var leaseResource = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (l *storeLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	o, err := l.st.Get(ctx, l.kind, l.ns, l.name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, apierrors.NewNotFound(leaseResource, l.name)
	}
	if err != nil {
		return nil, nil, err
	}
	lease := o.(*coordinationv1.Lease)
	l.rv = lease.ResourceVersion
	rec := resourcelock.LeaseSpecToLeaderElectionRecord(&lease.Spec)
	raw := fmt.Appendf(nil, "%s|%s|%v", rec.HolderIdentity, rec.RenewTime, rec.LeaderTransitions)
	return rec, raw, nil
}

func (l *storeLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	lease := &coordinationv1.Lease{
		TypeMeta:   metav1.TypeMeta{APIVersion: l.kind.APIVersion, Kind: l.kind.Name},
		ObjectMeta: metav1.ObjectMeta{Namespace: l.ns, Name: l.name},
		Spec:       resourcelock.LeaderElectionRecordToLeaseSpec(&ler),
	}
	if err := l.st.Create(ctx, lease); err != nil {
		return apierrors.NewAlreadyExists(leaseResource, l.name)
	}
	l.rv = lease.ResourceVersion
	return nil
}

// Update writes the record only if the Lease is still the one last read: two
// candidates that both saw it expire cannot both take it.
func (l *storeLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	if l.rv == "" {
		return errors.New("lease not read yet")
	}
	o, err := l.st.Update(ctx, l.kind, l.ns, l.name, func(o objects.Object) (bool, error) {
		if o.GetResourceVersion() != l.rv {
			return false, apierrors.NewConflict(leaseResource, l.name, errors.New("the Lease changed since it was read"))
		}
		o.(*coordinationv1.Lease).Spec = resourcelock.LeaderElectionRecordToLeaseSpec(&ler)
		return true, nil
	})
	if err != nil {
		return err
	}
	l.rv = o.GetResourceVersion()
	return nil
}

func (l *storeLock) RecordEvent(string) {}
func (l *storeLock) Identity() string   { return l.id }
func (l *storeLock) Describe() string   { return l.ns + "/" + l.name }
