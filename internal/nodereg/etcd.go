package nodereg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/cidralloc"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// Etcd registers nodes in fjord's store.
type Etcd struct {
	st       *store.Store
	leaseTTL time.Duration
	log      *slog.Logger
	now      func() time.Time
}

// NewEtcd returns the store's Registrar. leaseTTL is how long a silent node keeps its
// Lease (whole seconds, at least 2).
func NewEtcd(st *store.Store, leaseTTL time.Duration, log *slog.Logger) *Etcd {
	if log == nil {
		log = slog.Default()
	}
	return &Etcd{st: st, leaseTTL: leaseTTL, log: log, now: time.Now}
}

func (e *Etcd) kind(name string) objects.Kind {
	k, ok := e.st.Kinds().ByName(name)
	if !ok {
		panic("nodereg: unknown kind " + name)
	}
	return k
}

// Register creates the Node or brings its addresses and annotations up to date.
func (e *Etcd) Register(ctx context.Context, id Identity) error {
	want := func(n *corev1.Node) bool {
		changed := setAnnotations(n, id)
		for k, v := range map[string]string{"kubernetes.io/hostname": id.Node, "kubernetes.io/os": "linux"} {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			if n.Labels[k] != v {
				n.Labels[k] = v
				changed = true
			}
		}
		addrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: id.NodeIP.String()}, {Type: corev1.NodeHostName, Address: id.Node}}
		if !sameAddresses(n.Status.Addresses, addrs) {
			n.Status.Addresses = addrs
			changed = true
		}
		return changed
	}
	_, err := e.st.Update(ctx, e.kind("Node"), "", id.Node, func(o objects.Object) (bool, error) {
		return want(o.(*corev1.Node)), nil
	})
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: id.Node}}
	want(n)
	if err := e.st.Create(ctx, n); err != nil {
		return err
	}
	e.log.Info("registered node", "node", id.Node)
	return nil
}

func sameAddresses(a, b []corev1.NodeAddress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SetCondition sets a condition on the stored Node.
func (e *Etcd) SetCondition(ctx context.Context, node string, c corev1.NodeCondition) error {
	_, err := e.st.Update(ctx, e.kind("Node"), "", node, func(o objects.Object) (bool, error) {
		return setCondition(&o.(*corev1.Node).Status.Conditions, c), nil
	})
	return err
}

// claimPrefix is where pod-CIDR claims live: one key per CIDR holding its node's name.
// Claims are made with compare-and-swap, so two nodes never hold the same CIDR.
func (e *Etcd) claimPrefix() string { return e.st.Prefix() + "_fjord/podcidrs/" }

func (e *Etcd) claimKey(p netip.Prefix) string {
	return e.claimPrefix() + strings.ReplaceAll(p.String(), "/", "-")
}

// PodCIDR returns the node's pod CIDR, claiming a free one if needed, and records it
// in the Node's spec.podCIDR(s).
func (e *Etcd) PodCIDR(ctx context.Context, node string, pool Pool) (netip.Prefix, error) {
	o, err := e.st.Get(ctx, e.kind("Node"), "", node)
	if err != nil {
		return netip.Prefix{}, err
	}
	// Keep the CIDR the node already has, if its claim is ours (or free to take).
	if cur, err := netip.ParsePrefix(o.(*corev1.Node).Spec.PodCIDR); err == nil && cidralloc.InPool(pool.CIDR, pool.Bits, cur) {
		if ok, err := e.tryClaim(ctx, node, cur); err != nil || ok {
			return cur, e.record(ctx, node, cur, err)
		}
		e.log.Warn("pod CIDR in Node spec is claimed by another node; claiming a new one", "node", node, "cidr", cur)
	}
	resp, err := e.st.Client().Get(ctx, e.claimPrefix(), clientv3.WithPrefix())
	if err != nil {
		return netip.Prefix{}, err
	}
	claimed := map[string]bool{}
	for _, kv := range resp.Kvs {
		claimed[string(kv.Key)] = true
		if string(kv.Value) == node { // claimed earlier, crashed before recording it
			p, err := netip.ParsePrefix(strings.ReplaceAll(strings.TrimPrefix(string(kv.Key), e.claimPrefix()), "-", "/"))
			if err == nil && cidralloc.InPool(pool.CIDR, pool.Bits, p) {
				return p, e.record(ctx, node, p, nil)
			}
		}
	}
	// First the unclaimed CIDRs, then any whose node no longer exists.
	for _, skipClaimed := range []bool{true, false} {
		for p := range cidralloc.Subnets(pool.CIDR, pool.Bits) {
			if skipClaimed && claimed[e.claimKey(p)] {
				continue
			}
			ok, err := e.tryClaim(ctx, node, p)
			if err != nil {
				return netip.Prefix{}, err
			}
			if ok {
				return p, e.record(ctx, node, p, nil)
			}
		}
	}
	return netip.Prefix{}, Permanent{fmt.Errorf("no free /%d left in cluster CIDR %v", pool.Bits, pool.CIDR)}
}

// tryClaim takes p if it is unclaimed, already the node's, or held by a node that no
// longer exists. Each case is one etcd transaction guarded by the state it read.
func (e *Etcd) tryClaim(ctx context.Context, node string, p netip.Prefix) (bool, error) {
	cli := e.st.Client()
	key := e.claimKey(p)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return false, err
	}
	var cmps []clientv3.Cmp
	if len(resp.Kvs) == 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	} else {
		owner := string(resp.Kvs[0].Value)
		if owner == node {
			return true, nil
		}
		ownerKey := e.st.Key(e.kind("Node"), "", owner)
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision),
			clientv3.Compare(clientv3.CreateRevision(ownerKey), "=", 0))
	}
	txn, err := cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, node)).Commit()
	if err != nil {
		return false, err
	}
	return txn.Succeeded, nil
}

func (e *Etcd) record(ctx context.Context, node string, p netip.Prefix, prior error) error {
	if prior != nil {
		return prior
	}
	_, err := e.st.Update(ctx, e.kind("Node"), "", node, func(o objects.Object) (bool, error) {
		n := o.(*corev1.Node)
		if n.Spec.PodCIDR == p.String() && len(n.Spec.PodCIDRs) == 1 && n.Spec.PodCIDRs[0] == p.String() {
			return false, nil
		}
		n.Spec.PodCIDR = p.String()
		n.Spec.PodCIDRs = []string{p.String()}
		return true, nil
	})
	return err
}

// RenewInterval is how often a node's Lease with the given TTL is renewed.
func RenewInterval(ttl time.Duration) time.Duration { return max(ttl/4, 500*time.Millisecond) }

// KeepAlive keeps the node's Lease object alive until ctx ends. Its key is attached
// to an etcd lease with the configured TTL, so when the agent dies the key expires
// and every reader sees the node as NotReady, with no clock comparison between
// machines. The lease is renewed, and spec.renewTime rewritten (as a kubelet renews
// its Lease, so readers that do compare times see a live node too), every quarter of
// the TTL: a renewal held up by a network hiccup (a second, plus the TCP
// retransmission that follows it) still lands well before the TTL runs out, so a short
// TTL (the lab's 4 s) detects a dead node fast without flapping. A clean stop deletes
// the Lease: the node shows NotReady at once.
func (e *Etcd) KeepAlive(ctx context.Context, node string) error {
	key := e.st.Key(e.kind("Lease"), LeaseNamespace, node)
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := e.holdLease(ctx, node, key)
		if ctx.Err() != nil {
			break
		}
		e.log.Warn("node lease lost; renewing", "node", node, "err", err, "in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := e.st.Client().Delete(rctx, key)
	return err
}

func (e *Etcd) holdLease(ctx context.Context, node, key string) error {
	cli := e.st.Client()
	ttl := int64(e.leaseTTL / time.Second)
	grant, err := cli.Grant(ctx, ttl)
	if err != nil {
		return err
	}
	lk := e.kind("Lease")
	secs := int32(ttl)
	acquired := metav1.NewMicroTime(e.now())
	put := func() error {
		renewed := metav1.NewMicroTime(e.now())
		l := &coordinationv1.Lease{
			TypeMeta:   metav1.TypeMeta{APIVersion: lk.APIVersion, Kind: lk.Name},
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: LeaseNamespace},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &secs, AcquireTime: &acquired, RenewTime: &renewed},
		}
		val, err := json.Marshal(l)
		if err != nil {
			return err
		}
		_, err = cli.Put(ctx, key, string(val), clientv3.WithLease(grant.ID))
		return err
	}
	if err := put(); err != nil {
		return err
	}
	tick := time.NewTicker(RenewInterval(e.leaseTTL))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if _, err := cli.KeepAliveOnce(ctx, grant.ID); err != nil {
			return fmt.Errorf("keep-alive: %w", err)
		}
		if err := put(); err != nil {
			return fmt.Errorf("renew: %w", err)
		}
	}
}
