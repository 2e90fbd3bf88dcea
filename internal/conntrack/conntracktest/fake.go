// Package conntracktest provides a fake conntrack.Cleaner: an in-memory table that
// deletes with the same matching as the kernel adapter and records every call.
package conntracktest

import (
	"sync"

	"github.com/fjord-net/fjord/internal/conntrack"
)

// Fake is an in-memory conntrack table. The zero value is an empty table.
type Fake struct {
	mu    sync.Mutex
	flows []conntrack.Flow
	calls [][]conntrack.Selector
}

var _ conntrack.Cleaner = (*Fake)(nil)

// Add puts flows in the table.
func (f *Fake) Add(flows ...conntrack.Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows = append(f.flows, flows...)
}

// Flows returns what is left in the table.
func (f *Fake) Flows() []conntrack.Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]conntrack.Flow(nil), f.flows...)
}

// Calls returns the selectors of every Delete call, in order.
func (f *Fake) Calls() [][]conntrack.Selector {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]conntrack.Selector(nil), f.calls...)
}

// Delete implements conntrack.Cleaner.
func (f *Fake) Delete(sels ...conntrack.Selector) (int, error) {
	if err := conntrack.ValidateAll(sels); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]conntrack.Selector(nil), sels...))
	kept, n := f.flows[:0], 0
	for _, fl := range f.flows {
		if matchesAny(sels, fl) {
			n++
		} else {
			kept = append(kept, fl)
		}
	}
	f.flows = kept
	return n, nil
}

func matchesAny(sels []conntrack.Selector, fl conntrack.Flow) bool {
	for _, s := range sels {
		if s.Matches(fl) {
			return true
		}
	}
	return false
}
