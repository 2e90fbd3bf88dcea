package resolve

import (
	"context"
	"sort"
	"sync"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// Merged combines a Local source with a remote one (the store). Remote answers win,
// completed with the local facts only the machine knows; when the remote source
// fails, local answers are returned alone and the failure is kept in RemoteErr.
type Merged struct {
	Local  Source
	Remote Source // nil = local only

	mu        sync.Mutex
	remoteErr error
}

// RemoteErr is the last error of the remote source (nil if it answered or is unset).
func (m *Merged) RemoteErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remoteErr
}

func (m *Merged) note(err error) {
	m.mu.Lock()
	m.remoteErr = err
	m.mu.Unlock()
}

// Nodes merges by name.
func (m *Merged) Nodes(ctx context.Context) ([]Node, error) {
	local, lerr := m.Local.Nodes(ctx)
	if m.Remote == nil {
		return local, lerr
	}
	remote, err := m.Remote.Nodes(ctx)
	m.note(err)
	if err != nil {
		return local, lerr
	}
	byName := map[string]Node{}
	for _, n := range local {
		byName[n.Name] = n
	}
	out := make([]Node, 0, len(remote))
	seen := map[string]bool{}
	for _, r := range remote {
		if l, ok := byName[r.Name]; ok {
			r.Netns, r.RunDir, r.Here = l.Netns, l.RunDir, l.Here
			if r.PodMTU == 0 {
				r.PodMTU = l.PodMTU
			}
			if !r.IP.IsValid() {
				r.IP = l.IP
			}
		}
		seen[r.Name] = true
		out = append(out, r)
	}
	for _, l := range local {
		if !seen[l.Name] {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Pods merges by namespace/name.
func (m *Merged) Pods(ctx context.Context) ([]Pod, error) {
	local, lerr := m.Local.Pods(ctx)
	if m.Remote == nil {
		return local, lerr
	}
	remote, err := m.Remote.Pods(ctx)
	m.note(err)
	if err != nil {
		return local, lerr
	}
	byKey := map[string]Pod{}
	for _, p := range local {
		byKey[p.Key()] = p
	}
	seen := map[string]bool{}
	out := make([]Pod, 0, len(remote))
	for _, r := range remote {
		if l, ok := byKey[r.Key()]; ok {
			r.HostVeth, r.MTU = l.HostVeth, l.MTU
			if l.Netns != "" {
				r.Netns = l.Netns
			}
			if !r.IP.IsValid() {
				r.IP = l.IP
			}
			if r.Node == "" {
				r.Node = l.Node
			}
		}
		seen[r.Key()] = true
		out = append(out, r)
	}
	for _, l := range local {
		if !seen[l.Key()] {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// ServicePorts come from the remote source only.
func (m *Merged) ServicePorts(ctx context.Context) ([]servicemap.ServicePort, error) {
	if m.Remote == nil {
		return nil, ErrNeedsStore
	}
	sp, err := m.Remote.ServicePorts(ctx)
	m.note(err)
	return sp, err
}

// IngressBackend comes from the remote source only.
func (m *Merged) IngressBackend(ctx context.Context, host, path string) (Backend, error) {
	if m.Remote == nil {
		return Backend{}, ErrNeedsStore
	}
	b, err := m.Remote.IngressBackend(ctx, host, path)
	if err != nil && !isNotFound(err) {
		m.note(err)
	}
	return b, err
}
