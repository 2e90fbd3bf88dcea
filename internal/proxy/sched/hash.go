package sched

import "net/netip"

// FNV-1a 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashBytes is FNV-1a over b starting from seed, finished with the
// splitmix64 mixer so that nearby inputs spread over all 64 bits. It is
// stable across processes and Go versions (unlike hash/maphash).
func hashBytes(seed uint64, b []byte) uint64 {
	h := seed
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return mix64(h)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// flowHash hashes the flow's source IP (IPv4 and IPv4-mapped IPv6 hash
// alike) and, when withPort is set, its source port.
func flowHash(f Flow, withPort bool) uint64 {
	a := f.SrcIP.Unmap().As16()
	b := a[:]
	if withPort {
		b = append(b, byte(f.SrcPort>>8), byte(f.SrcPort))
	}
	return hashBytes(fnvOffset, b)
}

// addrHash hashes an endpoint address with the given seed.
func addrHash(seed uint64, ap netip.AddrPort) uint64 {
	a := ap.Addr().Unmap().As16()
	b := append(a[:], byte(ap.Port()>>8), byte(ap.Port()))
	return hashBytes(seed, b)
}
