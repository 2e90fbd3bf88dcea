package ipam

import (
	"fmt"
	"net/netip"
)

// Pool is the set of addresses pods may get: a prefix without its network address,
// its gateway and (IPv4) its broadcast address. The zero Pool contains nothing.
type Pool struct {
	prefix  netip.Prefix
	gateway netip.Addr
}

// NewPool validates prefix and gateway. The prefix must be in canonical (masked) form
// and leave at least one address for pods.
func NewPool(prefix netip.Prefix, gateway netip.Addr) (Pool, error) {
	switch {
	case !prefix.IsValid():
		return Pool{}, fmt.Errorf("pod CIDR %v is not a valid prefix", prefix)
	case prefix.Masked() != prefix:
		return Pool{}, fmt.Errorf("pod CIDR %v has host bits set (want %v)", prefix, prefix.Masked())
	case prefix.Addr().BitLen()-prefix.Bits() < 2:
		return Pool{}, fmt.Errorf("pod CIDR %v is too small: it needs at least 2 host bits", prefix)
	case !prefix.Contains(gateway):
		return Pool{}, fmt.Errorf("gateway %v is not inside pod CIDR %v", gateway, prefix)
	}
	p := Pool{prefix: prefix, gateway: gateway}
	if gateway == prefix.Addr() || (gateway.Is4() && gateway == p.last()) {
		return Pool{}, fmt.Errorf("gateway %v is the network or broadcast address of %v", gateway, prefix)
	}
	return p, nil
}

// Prefix returns the pool's prefix.
func (p Pool) Prefix() netip.Prefix { return p.prefix }

// last is the highest address of the prefix (the IPv4 broadcast address).
func (p Pool) last() netip.Addr {
	b := p.prefix.Addr().AsSlice()
	hostBits := p.prefix.Addr().BitLen() - p.prefix.Bits()
	for i := len(b) - 1; hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Usable reports whether ip may be handed to a pod.
func (p Pool) Usable(ip netip.Addr) bool {
	if !p.prefix.IsValid() || !p.prefix.Contains(ip) {
		return false
	}
	if ip == p.prefix.Addr() || ip == p.gateway {
		return false
	}
	return !ip.Is4() || ip != p.last()
}

// size is the number of addresses in the prefix, capped at limit.
func (p Pool) size(limit uint64) uint64 {
	hostBits := p.prefix.Addr().BitLen() - p.prefix.Bits()
	if hostBits >= 63 {
		return limit
	}
	return min(uint64(1)<<hostBits, limit)
}

// Next returns the first usable address after last (wrapping around the prefix) that
// is not in taken. It starts at the beginning of the prefix when last is outside it.
// It is pure and bounded: every address it skips is reserved or taken, so it looks at
// no more than len(taken)+4 addresses, and never more than the prefix holds.
func (p Pool) Next(last netip.Addr, taken map[netip.Addr]bool) (netip.Addr, bool) {
	if !p.prefix.IsValid() {
		return netip.Addr{}, false
	}
	ip := p.prefix.Addr()
	if p.prefix.Contains(last) {
		ip = p.advance(last)
	}
	for steps := p.size(uint64(len(taken)) + 4); steps > 0; steps-- {
		if p.Usable(ip) && !taken[ip] {
			return ip, true
		}
		ip = p.advance(ip)
	}
	return netip.Addr{}, false
}

// advance returns the address after ip, wrapping to the start of the prefix.
func (p Pool) advance(ip netip.Addr) netip.Addr {
	n := ip.Next()
	if !n.IsValid() || !p.prefix.Contains(n) {
		return p.prefix.Addr()
	}
	return n
}
