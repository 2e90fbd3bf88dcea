package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/objects"
)

// claimKey is the etcd key that records which node holds a pod CIDR. Claims are made
// with compare-and-swap, so two nodes can never hold the same CIDR.
func (a *Agent) claimKey(p netip.Prefix) string {
	return a.deps.Store.Prefix() + "_fjord/podcidrs/" + strings.ReplaceAll(p.String(), "/", "-")
}

// claimPodCIDR returns the node's pod CIDR, claiming a free one if needed, and records
// it in the Node's spec.podCIDR.
func (a *Agent) claimPodCIDR(ctx context.Context) (netip.Prefix, error) {
	cli := a.deps.Store.Client()
	node, err := a.deps.Store.Get(ctx, a.nodeKind(), "", a.cfg.NodeName)
	if err != nil {
		return netip.Prefix{}, err
	}
	// Keep the CIDR the node already has, if its claim is ours (or free to take).
	if cur, err := netip.ParsePrefix(node.(*corev1.Node).Spec.PodCIDR); err == nil && a.inPool(cur) {
		if ok, err := a.tryClaim(ctx, cur); err != nil || ok {
			return cur, a.recordPodCIDR(ctx, cur, err)
		}
		a.log.Warn("pod CIDR in Node spec is claimed by another node; claiming a new one", "cidr", cur)
	}
	resp, err := cli.Get(ctx, a.claimKey(a.cfg.ClusterCIDR)[:len(a.deps.Store.Prefix()+"_fjord/podcidrs/")], clientv3.WithPrefix())
	if err != nil {
		return netip.Prefix{}, err
	}
	claimed := map[string]string{}
	for _, kv := range resp.Kvs {
		claimed[string(kv.Key)] = string(kv.Value)
		if string(kv.Value) == a.cfg.NodeName { // claimed earlier, crashed before recording it
			p, err := netip.ParsePrefix(strings.ReplaceAll(strings.TrimPrefix(string(kv.Key), a.deps.Store.Prefix()+"_fjord/podcidrs/"), "-", "/"))
			if err == nil && a.inPool(p) {
				return p, a.recordPodCIDR(ctx, p, nil)
			}
		}
	}
	for p := range subnets(a.cfg.ClusterCIDR, a.cfg.NodeCIDRBits) {
		if _, taken := claimed[a.claimKey(p)]; taken {
			continue
		}
		ok, err := a.tryClaim(ctx, p)
		if err != nil {
			return netip.Prefix{}, err
		}
		if ok {
			return p, a.recordPodCIDR(ctx, p, nil)
		}
	}
	// Every CIDR is claimed: take over one whose node no longer exists.
	for p := range subnets(a.cfg.ClusterCIDR, a.cfg.NodeCIDRBits) {
		ok, err := a.tryClaim(ctx, p)
		if err != nil {
			return netip.Prefix{}, err
		}
		if ok {
			return p, a.recordPodCIDR(ctx, p, nil)
		}
	}
	return netip.Prefix{}, permanentError{fmt.Errorf("no free /%d left in cluster CIDR %v", a.cfg.NodeCIDRBits, a.cfg.ClusterCIDR)}
}

// tryClaim takes p if it is unclaimed, already ours, or held by a node that no longer
// exists. Each case is one etcd transaction guarded by the state it read.
func (a *Agent) tryClaim(ctx context.Context, p netip.Prefix) (bool, error) {
	cli := a.deps.Store.Client()
	key := a.claimKey(p)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return false, err
	}
	var cmps []clientv3.Cmp
	if len(resp.Kvs) == 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	} else {
		owner := string(resp.Kvs[0].Value)
		if owner == a.cfg.NodeName {
			return true, nil
		}
		ownerKey := a.deps.Store.Key(a.nodeKind(), "", owner)
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision),
			clientv3.Compare(clientv3.CreateRevision(ownerKey), "=", 0))
	}
	txn, err := cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, a.cfg.NodeName)).Commit()
	if err != nil {
		return false, err
	}
	return txn.Succeeded, nil
}

func (a *Agent) recordPodCIDR(ctx context.Context, p netip.Prefix, prior error) error {
	if prior != nil {
		return prior
	}
	_, err := a.deps.Store.Update(ctx, a.nodeKind(), "", a.cfg.NodeName, func(o objects.Object) (bool, error) {
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

func (a *Agent) inPool(p netip.Prefix) bool {
	return p.Bits() == a.cfg.NodeCIDRBits && a.cfg.ClusterCIDR.Contains(p.Addr())
}

// subnets yields every /bits inside pool, in address order.
func subnets(pool netip.Prefix, bits int) func(yield func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		pool = pool.Masked()
		n := 1 << (bits - pool.Bits())
		addr := pool.Addr()
		for i := 0; i < n; i++ {
			if !yield(netip.PrefixFrom(addr, bits)) {
				return
			}
			// Step to the next subnet: add 2^(len-bits) to the address.
			addr = addOffset(addr, uint64(1)<<(addr.BitLen()-bits))
		}
	}
}

func addOffset(a netip.Addr, off uint64) netip.Addr {
	b := a.AsSlice()
	carry := off
	for i := len(b) - 1; i >= 0 && carry > 0; i-- {
		sum := uint64(b[i]) + (carry & 0xff)
		carry >>= 8
		b[i] = byte(sum)
		carry += sum >> 8
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
