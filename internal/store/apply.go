package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fjord-net/fjord/internal/objects"
)

// ApplyResult says what Apply did with one object, in kubectl's words.
type ApplyResult struct {
	Kind      string
	Namespace string
	Name      string
	Action    string // "created", "configured" or "unchanged"
}

func (r ApplyResult) String() string {
	return fmt.Sprintf("%s/%s %s", lowerKind(r.Kind), r.Name, r.Action)
}

// Apply creates or replaces every object in one etcd transaction: either all of them
// are written or none is. Objects must already be validated. For an existing object the
// uid and creationTimestamp are kept, and so is its status when the applied object
// carries none (status belongs to the agents, not to the manifest).
//
// One transaction holds a put and a comparison per object written: an etcd
// server refuses more than its --max-txn-ops (128 by default) and Apply then
// fails with a TooManyOpsError, having written nothing; SetMaxTxnOps makes it
// fail so before it sends the transaction.
//
// Services are admitted as kube-apiserver admits them: cluster IPs and node ports are
// assigned (internal/svcalloc) from every stored Service, and the transaction is guarded
// so that it fails, and is retried, if any Service changed since they were read.
func (s *Store) Apply(ctx context.Context, objs []objects.Object) ([]ApplyResult, error) {
	return s.apply(ctx, objs, nil)
}

func (s *Store) apply(ctx context.Context, objs []objects.Object, fence *Fence) ([]ApplyResult, error) {
	const attempts = 20
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			// Back off with jitter so concurrent appliers stop colliding.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Duration(1+mrand.IntN(10)) * time.Millisecond):
			}
		}
		// Each attempt starts from the caller's objects: allocations of a failed
		// attempt must not look like explicit requests in the next one.
		work := make([]objects.Object, len(objs))
		for i, o := range objs {
			work[i] = o.DeepCopyObject().(objects.Object)
		}
		res, ok, err := s.tryApply(ctx, work, fence)
		if err != nil || ok {
			return res, err
		}
	}
	return nil, fmt.Errorf("apply: %w (tried %d times)", ErrConflict, attempts)
}

func (s *Store) tryApply(ctx context.Context, objs []objects.Object, fence *Fence) ([]ApplyResult, bool, error) {
	type planned struct {
		key    string
		kind   objects.Kind
		val    []byte
		seen   int64 // mod revision read; 0 = absent
		result ApplyResult
	}
	guard, err := s.admitServices(ctx, objs)
	if err != nil {
		return nil, false, err
	}
	var plan []planned
	seenKeys := map[string]bool{}
	for _, obj := range objs {
		k, err := s.KindOf(obj)
		if err != nil {
			return nil, false, err
		}
		key := s.Key(k, obj.GetNamespace(), obj.GetName())
		if seenKeys[key] {
			return nil, false, fmt.Errorf("%s %q appears twice in the input", k.Name, qualified(obj.GetNamespace(), obj.GetName()))
		}
		seenKeys[key] = true
		resp, err := s.c.Get(ctx, key)
		if err != nil {
			return nil, false, err
		}
		p := planned{key: key, kind: k, result: ApplyResult{Kind: k.Name, Namespace: obj.GetNamespace(), Name: obj.GetName()}}
		if len(resp.Kvs) == 0 {
			s.stampNew(obj)
			p.result.Action = "created"
		} else {
			kv := resp.Kvs[0]
			p.seen = kv.ModRevision
			old, err := s.decode(k, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, false, err
			}
			obj.SetUID(old.GetUID())
			obj.SetCreationTimestamp(old.GetCreationTimestamp())
			obj.SetResourceVersion("")
			p.result.Action = "configured"
		}
		val, err := s.encode(k, obj)
		if err != nil {
			return nil, false, err
		}
		if p.seen != 0 {
			val, err = keepStatus(val, resp.Kvs[0].Value)
			if err != nil {
				return nil, false, err
			}
			if sameJSON(val, resp.Kvs[0].Value) {
				p.result.Action = "unchanged"
			}
		}
		p.val = val
		plan = append(plan, p)
	}

	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	var results []ApplyResult
	if guard != nil {
		cmps = append(cmps, *guard)
	}
	if fence != nil {
		cmps = append(cmps, fence.cmp())
	}
	for _, p := range plan {
		results = append(results, p.result)
		if p.result.Action == "unchanged" {
			continue
		}
		if p.seen == 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(p.key), "=", 0))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p.key), "=", p.seen))
		}
		ops = append(ops, clientv3.OpPut(p.key, string(p.val)))
	}
	if len(ops) == 0 {
		return results, true, nil
	}
	need := max(len(cmps), len(ops))
	if s.maxTxnOps > 0 && need > s.maxTxnOps {
		return nil, false, &TooManyOpsError{Objects: len(ops), Ops: need, Limit: s.maxTxnOps}
	}
	txn, err := s.c.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if errors.Is(err, rpctypes.ErrTooManyOps) {
		return nil, false, &TooManyOpsError{Objects: len(ops), Ops: need}
	}
	if err != nil {
		return nil, false, fmt.Errorf("apply transaction of %d objects: %w", len(ops), err)
	}
	if !txn.Succeeded && fence != nil {
		if err := s.checkFence(ctx, *fence); err != nil {
			return nil, false, err
		}
	}
	return results, txn.Succeeded, nil
}

// DefaultEtcdMaxTxnOps is etcd's default --max-txn-ops: the most operations
// (and, separately, comparisons) one transaction may hold.
const DefaultEtcdMaxTxnOps = 128

// ErrTooManyOps is wrapped by TooManyOpsError.
var ErrTooManyOps = errors.New("too many operations for one etcd transaction")

// TooManyOpsError means an apply needs a bigger transaction than the etcd
// server accepts (its --max-txn-ops), or than SetMaxTxnOps allows. Nothing
// was written: Apply is all or nothing, and splitting it would not be.
type TooManyOpsError struct {
	Objects int // objects to write
	Ops     int // operations (or comparisons) the transaction needs
	Limit   int // the limit given with SetMaxTxnOps; 0 when the server refused
}

func (e *TooManyOpsError) Error() string {
	limit := fmt.Sprintf("the etcd server's --max-txn-ops (%d unless the cluster raised it; fjord's embedded etcd allows 10000)", DefaultEtcdMaxTxnOps)
	if e.Limit > 0 {
		limit = fmt.Sprintf("--max-txn-ops %d", e.Limit)
	}
	return fmt.Sprintf("%d objects to write need one transaction of %d operations, more than %s; nothing was written. "+
		"Raise --max-txn-ops on every etcd member (and pass the same value to fjord apply --max-txn-ops), "+
		"or apply the objects in smaller files (each file is then all or nothing on its own)", e.Objects, e.Ops, limit)
}

func (e *TooManyOpsError) Unwrap() error { return ErrTooManyOps }

// keepStatus copies the stored "status" into the new value when the new value has none.
func keepStatus(newVal, oldVal []byte) ([]byte, error) {
	var nv, ov map[string]json.RawMessage
	if err := json.Unmarshal(newVal, &nv); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(oldVal, &ov); err != nil {
		return newVal, nil
	}
	st, has := nv["status"]
	if has && !isEmptyJSON(st) {
		return newVal, nil
	}
	old, ok := ov["status"]
	if !ok {
		return newVal, nil
	}
	nv["status"] = old
	return json.Marshal(nv)
}

// sameJSON compares two JSON documents by meaning, not by key order.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func isEmptyJSON(m json.RawMessage) bool {
	s := string(bytes.TrimSpace(m))
	return s == "" || s == "{}" || s == "null"
}

func newUID() types.UID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

func lowerKind(k string) string {
	b := []byte(k)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
