package agent

import (
	"context"
	"encoding/json"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/objects"
)

// LeaseNamespace holds one Lease per live node, as in Kubernetes.
const LeaseNamespace = "kube-node-lease"

// keepLease keeps the node's Lease object alive. The object is attached to an etcd lease
// with the configured TTL, so when the agent dies the key expires and every reader sees
// the node as NotReady, with no clock comparison between machines.
func (a *Agent) keepLease(ctx context.Context) {
	cli := a.deps.Store.Client()
	lk, _ := a.deps.Store.Kinds().ByName("Lease")
	key := a.deps.Store.Key(lk, LeaseNamespace, a.cfg.NodeName)
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := a.holdLease(ctx, cli, lk, key)
		if ctx.Err() != nil {
			break
		}
		a.log.Warn("node lease lost; renewing", "err", err, "in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	// Give the lease back on a clean stop so the node shows NotReady at once.
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = cli.Delete(rctx, key)
}

func (a *Agent) holdLease(ctx context.Context, cli *clientv3.Client, lk objects.Kind, key string) error {
	ttl := int64(a.cfg.LeaseTTL / time.Second)
	grant, err := cli.Grant(ctx, ttl)
	if err != nil {
		return err
	}
	secs := int32(ttl)
	holder := a.cfg.NodeName
	now := metav1.NewMicroTime(time.Now())
	l := &coordinationv1.Lease{
		TypeMeta:   metav1.TypeMeta{APIVersion: lk.APIVersion, Kind: lk.Name},
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: LeaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	val, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := cli.Put(ctx, key, string(val), clientv3.WithLease(grant.ID)); err != nil {
		return err
	}
	ch, err := cli.KeepAlive(ctx, grant.ID)
	if err != nil {
		return err
	}
	for range ch {
	}
	return errLeaseExpired
}

type leaseError string

func (e leaseError) Error() string { return string(e) }

const errLeaseExpired = leaseError("keep-alive stream ended")
