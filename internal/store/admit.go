package store

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/svcalloc"
)

// admitServices assigns cluster IPs and node ports to the Services among objs, from
// every stored Service, and returns a comparison that holds only while no Service has
// been written since they were read (nil when objs has no Service). Deletions are not
// caught by it, which is harmless: a deletion only frees addresses.
func (s *Store) admitServices(ctx context.Context, objs []objects.Object) (*clientv3.Cmp, error) {
	var incoming []*corev1.Service
	for _, o := range objs {
		if svc, ok := o.(*corev1.Service); ok {
			incoming = append(incoming, svc)
		}
	}
	if len(incoming) == 0 {
		return nil, nil
	}
	k, _ := s.kinds.ByName("Service")
	prefix := s.prefix + k.Prefix("")
	resp, err := s.c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	stored := make([]*corev1.Service, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var svc corev1.Service
		if err := json.Unmarshal(kv.Value, &svc); err != nil {
			return nil, fmt.Errorf("stored service %s: %w", kv.Key, err)
		}
		stored = append(stored, &svc)
	}
	if err := svcalloc.Assign(s.ranges, stored, incoming); err != nil {
		return nil, err
	}
	guard := clientv3.Compare(clientv3.ModRevision(prefix), "<", resp.Header.Revision+1).WithPrefix()
	return &guard, nil
}
