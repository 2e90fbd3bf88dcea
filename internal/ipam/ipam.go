// Package ipam owns pod address allocation on one node, shaped like the host-local
// plugin: Allocate, Release and GC are small functions over a narrow Store interface,
// and the choice of the next address (Pool.Next) is pure. The disk store lives in
// ipam/diskstore, an in-memory fake for tests in ipam/ipamfake.
//
// Ordering rule: every function here takes the store's lock for its whole
// read-decide-write sequence, so concurrent plugin processes never hand out one
// address twice.
package ipam

import (
	"errors"
	"net/netip"
)

// Owner identifies one attachment: a container's interface.
type Owner struct {
	ContainerID string
	IfName      string
}

// Allocation is one reserved address and who holds it.
type Allocation struct {
	IP    netip.Addr
	Owner Owner
	// Pod is "namespace/name" of the pod holding the address when the runtime said
	// (CNI_ARGS K8S_POD_NAMESPACE and K8S_POD_NAME); "" otherwise. It is a record
	// for people and troubleshooting tools, not part of the owner's identity.
	Pod string
}

// Store persists allocations. Lock/Unlock bracket every read-decide-write sequence;
// the other methods are only called while the lock is held.
type Store interface {
	Lock() error
	Unlock() error
	// List returns every allocation the store holds, in any order.
	List() ([]Allocation, error)
	// Reserve records a; it reports false (and changes nothing) when a.IP is already
	// taken. On success a.IP also becomes the last reserved address.
	Reserve(a Allocation) (bool, error)
	// Release forgets ip; releasing a free address is not an error.
	Release(ip netip.Addr) error
	// LastReserved returns the most recently reserved address, or the zero Addr.
	LastReserved() (netip.Addr, error)
}

// ErrExhausted is returned by Allocate when the pool has no free address.
var ErrExhausted = errors.New("no free address left in the pod CIDR")

// locked runs f with s locked.
func locked(s Store, f func() error) error {
	if err := s.Lock(); err != nil {
		return err
	}
	err := f()
	if uerr := s.Unlock(); err == nil {
		err = uerr
	}
	return err
}

// Allocate returns o's address in p. An owner that already holds an address inside p
// gets it back (fresh is false); addresses it holds outside p (the node's pod CIDR
// changed) are released. Otherwise the next free address after the last reserved one
// is reserved (fresh is true).
func Allocate(s Store, p Pool, o Owner) (ip netip.Addr, fresh bool, err error) {
	return AllocateFor(s, p, o, "")
}

// AllocateFor is Allocate recording which pod (namespace/name) the address is for.
func AllocateFor(s Store, p Pool, o Owner, pod string) (ip netip.Addr, fresh bool, err error) {
	err = locked(s, func() error {
		all, err := s.List()
		if err != nil {
			return err
		}
		if ip, err = reuse(s, p, o, all); err != nil || ip.IsValid() {
			return err
		}
		ip, err = reserveNext(s, p, Allocation{Owner: o, Pod: pod}, all)
		fresh = err == nil
		return err
	})
	return ip, fresh, err
}

// reuse finds o's address inside p and releases any it holds outside p.
func reuse(s Store, p Pool, o Owner, all []Allocation) (netip.Addr, error) {
	var found netip.Addr
	for _, a := range all {
		if a.Owner != o {
			continue
		}
		if p.Usable(a.IP) && !found.IsValid() {
			found = a.IP
			continue
		}
		if !p.Usable(a.IP) {
			if err := s.Release(a.IP); err != nil {
				return netip.Addr{}, err
			}
		}
	}
	return found, nil
}

// reserveNext reserves the next free address of p for o, round robin from the last
// reserved address.
func reserveNext(s Store, p Pool, a Allocation, all []Allocation) (netip.Addr, error) {
	taken := make(map[netip.Addr]bool, len(all))
	for _, held := range all {
		taken[held.IP] = true
	}
	last, err := s.LastReserved()
	if err != nil {
		return netip.Addr{}, err
	}
	for {
		ip, ok := p.Next(last, taken)
		if !ok {
			return netip.Addr{}, ErrExhausted
		}
		a.IP = ip
		ok, err := s.Reserve(a)
		if err != nil || ok {
			return ip, err
		}
		taken[ip] = true // held by an allocation List did not return; try the next one
		last = ip
	}
}

// Release frees every address o holds and returns them. Owners without an address
// are not an error (DEL is idempotent).
func Release(s Store, o Owner) ([]netip.Addr, error) {
	return releaseWhere(s, func(a Allocation) bool { return a.Owner == o })
}

// GC frees every allocation for which keep reports false and returns them.
func GC(s Store, keep func(Allocation) bool) ([]netip.Addr, error) {
	return releaseWhere(s, func(a Allocation) bool { return !keep(a) })
}

func releaseWhere(s Store, drop func(Allocation) bool) ([]netip.Addr, error) {
	var freed []netip.Addr
	err := locked(s, func() error {
		all, err := s.List()
		if err != nil {
			return err
		}
		for _, a := range all {
			if !drop(a) {
				continue
			}
			if err := s.Release(a.IP); err != nil {
				return err
			}
			freed = append(freed, a.IP)
		}
		return nil
	})
	return freed, err
}

// Lookup returns the address o holds inside p, if any.
func Lookup(s Store, p Pool, o Owner) (netip.Addr, bool, error) {
	var ip netip.Addr
	err := locked(s, func() error {
		all, err := s.List()
		for _, a := range all {
			if a.Owner == o && p.Usable(a.IP) {
				ip = a.IP
				break
			}
		}
		return err
	})
	return ip, ip.IsValid(), err
}
