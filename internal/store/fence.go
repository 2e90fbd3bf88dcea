package store

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fjord-net/fjord/internal/objects"
)

// ErrFenced is returned by a fenced write whose writer is no longer the elected one.
var ErrFenced = errors.New("fenced: this writer is no longer the elected one")

// Fence makes a write conditional on its writer still holding an election: the
// election key (an etcd concurrency.Election's Key()) must still exist with the
// create revision it had when the election was won (Rev()). A leader that was paused
// while another took over therefore cannot overwrite the new leader's objects: its
// transaction fails as a whole.
type Fence struct {
	Key string
	Rev int64
}

func (f Fence) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)
}

// checkFence tells a failed fenced transaction's cause: ErrFenced if the election
// moved on, nil if something else (an object) changed and the write may be retried.
func (s *Store) checkFence(ctx context.Context, f Fence) error {
	resp, err := s.c.Get(ctx, f.Key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != f.Rev {
		return ErrFenced
	}
	return nil
}

// ApplyFenced is Apply guarded by a Fence: nothing is written unless the writer still
// holds its election.
func (s *Store) ApplyFenced(ctx context.Context, objs []objects.Object, f Fence) ([]ApplyResult, error) {
	return s.apply(ctx, objs, &f)
}

// DeleteFenced is Delete guarded by a Fence.
func (s *Store) DeleteFenced(ctx context.Context, k objects.Kind, namespace, name string, f Fence) error {
	key := s.Key(k, namespace, name)
	txn, err := s.c.Txn(ctx).If(f.cmp()).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return err
	}
	if !txn.Succeeded {
		return ErrFenced
	}
	if txn.Responses[0].GetResponseDeleteRange().Deleted == 0 {
		return fmt.Errorf("%s %q: %w", k.Name, qualified(namespace, name), ErrNotFound)
	}
	return nil
}
