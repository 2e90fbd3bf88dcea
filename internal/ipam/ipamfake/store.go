// Package ipamfake is an in-memory ipam.Store for tests. It checks the locking
// discipline: calling a data method without holding the lock is an error.
package ipamfake

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/fjord-net/fjord/internal/ipam"
)

// Store holds allocations in memory. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex // the store's lock (Lock/Unlock)
	held   bool       // whether mu is held; guarded by mu
	allocs map[netip.Addr]ipam.Owner
	last   netip.Addr

	// FailReserve, when set, makes Reserve return this error (tests of error paths).
	FailReserve error
}

var _ ipam.Store = (*Store)(nil)

var errNotLocked = errors.New("ipamfake: store used without holding its lock")

// New returns an empty store holding the given allocations.
func New(allocs ...ipam.Allocation) *Store {
	s := &Store{allocs: map[netip.Addr]ipam.Owner{}}
	for _, a := range allocs {
		s.allocs[a.IP] = a.Owner
	}
	return s
}

// Lock takes the store's lock.
func (s *Store) Lock() error { s.mu.Lock(); s.held = true; return nil }

// Unlock releases the store's lock.
func (s *Store) Unlock() error { s.held = false; s.mu.Unlock(); return nil }

// List returns all allocations.
func (s *Store) List() ([]ipam.Allocation, error) {
	if !s.held {
		return nil, errNotLocked
	}
	out := make([]ipam.Allocation, 0, len(s.allocs))
	for ip, o := range s.allocs {
		out = append(out, ipam.Allocation{IP: ip, Owner: o})
	}
	return out, nil
}

// Reserve records a unless its address is taken.
func (s *Store) Reserve(a ipam.Allocation) (bool, error) {
	if !s.held {
		return false, errNotLocked
	}
	if s.FailReserve != nil {
		return false, s.FailReserve
	}
	if _, ok := s.allocs[a.IP]; ok {
		return false, nil
	}
	s.allocs[a.IP] = a.Owner
	s.last = a.IP
	return true, nil
}

// Release forgets ip.
func (s *Store) Release(ip netip.Addr) error {
	if !s.held {
		return errNotLocked
	}
	delete(s.allocs, ip)
	return nil
}

// LastReserved returns the last reserved address.
func (s *Store) LastReserved() (netip.Addr, error) {
	if !s.held {
		return netip.Addr{}, errNotLocked
	}
	return s.last, nil
}

// SetLastReserved sets the last reserved address (test setup).
func (s *Store) SetLastReserved(ip netip.Addr) { s.last = ip }

// Snapshot returns a copy of the allocations (test assertions).
func (s *Store) Snapshot() map[netip.Addr]ipam.Owner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.Addr]ipam.Owner, len(s.allocs))
	for ip, o := range s.allocs {
		out[ip] = o
	}
	return out
}
