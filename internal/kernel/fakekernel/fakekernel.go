// Package fakekernel is an in-memory kernel for tests: it holds a podnet.State, applies
// podnet.Changes to it the way the real kernel package does, and prints it as golden text.
package fakekernel

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/podnet"
)

// Kernel is the fake. The zero value is an empty kernel; set Underlay for FindUnderlay.
type Kernel struct {
	mu       sync.Mutex
	state    podnet.State
	Underlay kernel.Underlay
	// Applies counts non-empty Apply calls, so tests can check a restart changed nothing.
	Applies int
	// Forwarding is set once EnableForwarding was called.
	Forwarding bool
}

// FindUnderlay returns the configured underlay.
func (k *Kernel) FindUnderlay(name string, want netip.Addr) (kernel.Underlay, error) {
	if !k.Underlay.Addr.IsValid() {
		return kernel.Underlay{}, errors.New("fake kernel: no underlay configured")
	}
	return k.Underlay, nil
}

// EnableForwarding records that forwarding was requested.
func (k *Kernel) EnableForwarding() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Forwarding = true
	return nil
}

// Observe returns the current state.
func (k *Kernel) Observe(string) (podnet.State, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state, nil
}

// State returns the current state (for assertions).
func (k *Kernel) State() podnet.State {
	s, _ := k.Observe("")
	return s
}

// Apply applies changes.
func (k *Kernel) Apply(c podnet.Changes) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !c.Empty() {
		k.Applies++
	}
	k.state = ApplyTo(k.state, c)
	return nil
}

// ApplyTo returns cur with c applied: the reference semantics of podnet.Changes.
func ApplyTo(cur podnet.State, c podnet.Changes) podnet.State {
	out := cur
	if c.Device != nil {
		d := *c.Device
		out.Device = &d
	}
	type nk struct {
		dev string
		ip  netip.Addr
	}
	type fk struct{ dev, mac string }
	out.Addrs = applyList(out.Addrs, c.AddAddrs, c.DelAddrs, func(p netip.Prefix) netip.Prefix { return p })
	out.Neighs = applyList(out.Neighs, c.SetNeighs, c.DelNeighs, func(n podnet.Neigh) nk { return nk{n.Dev, n.IP} })
	out.FDB = applyList(out.FDB, c.SetFDB, c.DelFDB, func(f podnet.FDB) fk { return fk{f.Dev, f.MAC} })
	out.Routes = applyList(out.Routes, c.SetRoutes, c.DelRoutes, func(r podnet.Route) netip.Prefix { return r.Dst })
	return out
}

func applyList[T any, K comparable](cur, set, del []T, key func(T) K) []T {
	m := map[K]T{}
	var order []K
	for _, c := range cur {
		m[key(c)] = c
		order = append(order, key(c))
	}
	for _, d := range del {
		delete(m, key(d))
	}
	for _, s := range set {
		if _, ok := m[key(s)]; !ok {
			order = append(order, key(s))
		}
		m[key(s)] = s
	}
	var out []T
	seen := map[K]bool{}
	for _, k := range order {
		if v, ok := m[k]; ok && !seen[k] {
			out = append(out, v)
			seen[k] = true
		}
	}
	return out
}
