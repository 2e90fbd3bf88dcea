// Package cidralloc is the pure arithmetic of handing out node pod CIDRs: the /bits
// subnets of a cluster pool, in address order, for IPv4 and IPv6 alike (128-bit
// steps: a /48 pool cut into /64s walks 65,536 distinct subnets). Who may take a
// subnet is decided elsewhere (an etcd compare-and-swap, or an optimistic update of a
// Kubernetes Node); this package only enumerates and checks.
package cidralloc

import (
	"fmt"
	"iter"
	"net/netip"
)

// MaxScan bounds how many subnets one search visits, so a pool with 2^64 subnets
// cannot turn a claim into an endless loop.
const MaxScan = 1 << 20

// Validate checks that pool can be cut into /bits subnets that leave room for pods.
func Validate(pool netip.Prefix, bits int) error {
	if !pool.IsValid() {
		return fmt.Errorf("pool %v is not a CIDR", pool)
	}
	if bits <= pool.Bits() || bits > pool.Addr().BitLen()-2 {
		return fmt.Errorf("/%d must be longer than the pool's /%d and leave room for pods (at most /%d)", bits, pool.Bits(), pool.Addr().BitLen()-2)
	}
	return nil
}

// Subnets yields the /bits subnets of pool in address order, at most MaxScan of them.
func Subnets(pool netip.Prefix, bits int) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		if Validate(pool, bits) != nil {
			return
		}
		pool = pool.Masked()
		addr := pool.Addr()
		for i := 0; i < MaxScan; i++ {
			if !yield(netip.PrefixFrom(addr, bits)) {
				return
			}
			next, carry := step(addr, bits)
			if carry || !pool.Contains(next) {
				return
			}
			addr = next
		}
	}
}

// FirstFree returns the first subnet of pool that taken does not report as taken.
func FirstFree(pool netip.Prefix, bits int, taken func(netip.Prefix) bool) (netip.Prefix, bool) {
	for p := range Subnets(pool, bits) {
		if !taken(p) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// InPool reports whether p is one of pool's /bits subnets.
func InPool(pool netip.Prefix, bits int, p netip.Prefix) bool {
	return p.IsValid() && p.Bits() == bits && p.Masked() == p && pool.Masked().Contains(p.Addr()) &&
		p.Addr().BitLen() == pool.Addr().BitLen()
}

// step adds 2^(BitLen-bits) to a: the start of the next /bits subnet. carry reports an
// overflow past the end of the address space.
func step(a netip.Addr, bits int) (netip.Addr, bool) {
	b := a.As16()
	off := 16 - a.BitLen()/8 // IPv4 lives in the last 4 bytes
	i := off + (bits-1)/8
	add := byte(1) << (7 - uint(bits-1)%8)
	for ; i >= off; i-- {
		sum := uint16(b[i]) + uint16(add)
		b[i] = byte(sum)
		if sum < 256 {
			break
		}
		add = 1
	}
	next := netip.AddrFrom16(b)
	if a.Is4() {
		next = next.Unmap()
	}
	return next, i < off
}
