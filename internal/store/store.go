// Package store keeps fjord's cluster state in etcd: Kubernetes objects as JSON under a
// documented key layout (see docs/architecture.md), with resourceVersion equal to the
// etcd modification revision of the object's key.
//
// Key layout, all under a prefix (default "/fjord/"):
//
//	<prefix><resource>/<namespace>/<name>   namespaced objects (pods, services, ...)
//	<prefix><resource>/<name>               cluster-scoped objects (nodes, ingressclasses)
//	<prefix>_fjord/...                      fjord's own bookkeeping (pod CIDR claims)
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/svcalloc"
)

// DefaultPrefix is the key prefix of every object fjord writes.
const DefaultPrefix = "/fjord/"

// ErrNotFound is returned when an object does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when an object changed between read and write.
var ErrConflict = errors.New("object was modified concurrently")

// Store reads and writes objects in etcd.
type Store struct {
	c      *clientv3.Client
	prefix string
	kinds  objects.Registry
	now    func() time.Time
	newUID func() types.UID
	ranges svcalloc.Ranges // service IPs and node ports handed out on apply
	// maxTxnOps is the transaction size Apply refuses to send; 0: the server decides.
	maxTxnOps int
}

// New wraps an etcd client. prefix "" means DefaultPrefix.
func New(c *clientv3.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{c: c, prefix: prefix, kinds: objects.Kinds(), now: time.Now, newUID: newUID, ranges: svcalloc.Default()}
}

// SetMaxTxnOps makes Apply refuse, before writing, a transaction of more
// than n operations (the etcd cluster's --max-txn-ops); 0 leaves it to the
// server to refuse.
func (s *Store) SetMaxTxnOps(n int) { s.maxTxnOps = n }

// SetServiceRanges changes the service IP and node-port ranges used on apply.
func (s *Store) SetServiceRanges(r svcalloc.Ranges) { s.ranges = r }

// Client returns the underlying etcd client, for leases and fjord's own bookkeeping keys.
func (s *Store) Client() *clientv3.Client { return s.c }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Kinds returns the kind registry the store uses.
func (s *Store) Kinds() objects.Registry { return s.kinds }

// Key returns the full etcd key of an object.
func (s *Store) Key(k objects.Kind, namespace, name string) string {
	return s.prefix + k.Key(namespace, name)
}

// KindOf returns the Kind of a typed object.
func (s *Store) KindOf(obj objects.Object) (objects.Kind, error) {
	return objects.KindOf(s.kinds, obj)
}

// Get reads one object.
func (s *Store) Get(ctx context.Context, k objects.Kind, namespace, name string) (objects.Object, error) {
	resp, err := s.c.Get(ctx, s.Key(k, namespace, name))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%s %q: %w", k.Name, qualified(namespace, name), ErrNotFound)
	}
	return s.decode(k, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// List reads every object of a kind in a namespace ("" = all) and returns the store
// revision the list was read at, from which a Watch continues without a gap.
func (s *Store) List(ctx context.Context, k objects.Kind, namespace string) ([]objects.Object, int64, error) {
	resp, err := s.c.Get(ctx, s.prefix+k.Prefix(namespace), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	out := make([]objects.Object, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		o, err := s.decode(k, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, fmt.Errorf("key %s: %w", kv.Key, err)
		}
		out = append(out, o)
	}
	return out, resp.Header.Revision, nil
}

// Delete removes one object. Deleting a missing object returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, k objects.Kind, namespace, name string) error {
	resp, err := s.c.Delete(ctx, s.Key(k, namespace, name))
	if err != nil {
		return err
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("%s %q: %w", k.Name, qualified(namespace, name), ErrNotFound)
	}
	return nil
}

// Update reads an object, lets mutate change it, and writes it back only if nobody
// changed it in between (compare-and-swap on the modification revision), retrying a
// few times on conflict. mutate returning false means "no change needed".
func (s *Store) Update(ctx context.Context, k objects.Kind, namespace, name string, mutate func(objects.Object) (bool, error)) (objects.Object, error) {
	key := s.Key(k, namespace, name)
	for attempt := 0; attempt < 10; attempt++ {
		resp, err := s.c.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			return nil, fmt.Errorf("%s %q: %w", k.Name, qualified(namespace, name), ErrNotFound)
		}
		kv := resp.Kvs[0]
		obj, err := s.decode(k, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		changed, err := mutate(obj)
		if err != nil || !changed {
			return obj, err
		}
		val, err := s.encode(k, obj)
		if err != nil {
			return nil, err
		}
		txn, err := s.c.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, string(val))).Commit()
		if err != nil {
			return nil, err
		}
		if txn.Succeeded {
			obj.SetResourceVersion(fmt.Sprint(txn.Header.Revision))
			return obj, nil
		}
	}
	return nil, fmt.Errorf("%s %q: %w", k.Name, qualified(namespace, name), ErrConflict)
}

// Create writes a new object; it fails with an error if the object already exists.
func (s *Store) Create(ctx context.Context, obj objects.Object) error {
	k, err := s.KindOf(obj)
	if err != nil {
		return err
	}
	s.stampNew(obj)
	val, err := s.encode(k, obj)
	if err != nil {
		return err
	}
	key := s.Key(k, obj.GetNamespace(), obj.GetName())
	txn, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return err
	}
	if !txn.Succeeded {
		return fmt.Errorf("%s %q already exists", k.Name, qualified(obj.GetNamespace(), obj.GetName()))
	}
	obj.SetResourceVersion(fmt.Sprint(txn.Header.Revision))
	return nil
}

func (s *Store) stampNew(obj objects.Object) {
	obj.SetUID(s.newUID())
	obj.SetCreationTimestamp(metav1.NewTime(s.now().UTC().Truncate(time.Second)))
	obj.SetResourceVersion("")
}

// encode renders an object as stored: JSON with apiVersion and kind set and without
// resourceVersion (which is the etcd revision, never stored inside the value).
func (s *Store) encode(k objects.Kind, obj objects.Object) ([]byte, error) {
	obj.GetObjectKind().SetGroupVersionKind(objects.GVK(k))
	rv := obj.GetResourceVersion()
	obj.SetResourceVersion("")
	defer obj.SetResourceVersion(rv)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func (s *Store) decode(k objects.Kind, val []byte, modRev int64) (objects.Object, error) {
	obj := k.New()
	if err := json.Unmarshal(val, obj); err != nil {
		return nil, fmt.Errorf("stored %s is not valid JSON: %w", k.Name, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(objects.GVK(k))
	obj.SetResourceVersion(fmt.Sprint(modRev))
	return obj, nil
}

func qualified(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
