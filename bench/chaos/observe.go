package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/fjord-net/fjord/internal/endpoints"
	"github.com/fjord-net/fjord/internal/store"
)

// watchedServices are the Services whose endpoints the watcher follows.
var watchedServices = []string{"echo", "chaos-np"}

// sliceWatcher polls the store's EndpointSlices and records every change of an
// endpoint's readiness, and when the store did not answer.
type sliceWatcher struct {
	st     *store.Store
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	cur     map[string]bool // "service/ip" → ready
	changes []readyChange
	down    []span // when the store did not answer
}

type readyChange struct {
	At    time.Time
	Key   string // service/ip
	Ready bool
}

type span struct{ From, To time.Time }

func startSliceWatcher(ctx context.Context, st *store.Store) *sliceWatcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &sliceWatcher{st: st, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			w.poll(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *sliceWatcher) stop() { w.cancel(); <-w.done }

func (w *sliceWatcher) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	k, _ := w.st.Kinds().ByName("EndpointSlice")
	list, _, err := w.st.List(pctx, k, "default")
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && (len(w.down) == 0 || !w.down[len(w.down)-1].To.IsZero()) {
			w.down = append(w.down, span{From: now})
		}
		return
	}
	if len(w.down) > 0 && w.down[len(w.down)-1].To.IsZero() {
		w.down[len(w.down)-1].To = now
	}
	seen := map[string]bool{}
	for _, o := range list {
		es := o.(*discoveryv1.EndpointSlice)
		svc := es.Labels[endpoints.LabelServiceName]
		if !contains(watchedServices, svc) {
			continue
		}
		for _, ep := range es.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			key := svc + "/" + ep.Addresses[0]
			seen[key] = ep.Conditions.Ready != nil && *ep.Conditions.Ready
		}
	}
	if w.cur == nil { // the first look is the baseline
		w.cur = seen
		return
	}
	for key, ready := range seen {
		if old, ok := w.cur[key]; !ok || old != ready {
			w.changes = append(w.changes, readyChange{At: now, Key: key, Ready: ready})
		}
	}
	for key, old := range w.cur {
		if _, ok := seen[key]; !ok && old {
			w.changes = append(w.changes, readyChange{At: now, Key: key, Ready: false})
		}
	}
	w.cur = seen
}

// changesOf returns the readiness changes of ip (every watched Service; "" = every
// endpoint) in [from, to).
func (w *sliceWatcher) changesOf(ip string, from, to time.Time) []readyChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []readyChange
	for _, c := range w.changes {
		if (ip == "" || strings.HasSuffix(c.Key, "/"+ip)) && !c.At.Before(from) && c.At.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// state reports whether ip is ready in every watched Service (all) or in none (none).
func (w *sliceWatcher) state(ip string) (all, none bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	all, none = true, true
	for _, svc := range watchedServices {
		r := w.cur[svc+"/"+ip]
		all = all && r
		none = none && !r
	}
	return all, none
}

// firstAll returns when ip had become ready (want true) or unready (want false) in
// every watched Service, from the changes in [from, to): the latest of each Service's
// first such change; zero if some Service had none.
func (w *sliceWatcher) firstAll(ip string, want bool, from, to time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	first := map[string]time.Time{}
	for _, c := range w.changes {
		if !strings.HasSuffix(c.Key, "/"+ip) || c.At.Before(from) || !c.At.Before(to) || c.Ready != want {
			continue
		}
		svc := strings.TrimSuffix(c.Key, "/"+ip)
		if _, ok := first[svc]; !ok {
			first[svc] = c.At
		}
	}
	var at time.Time
	for _, svc := range watchedServices {
		t, ok := first[svc]
		if !ok {
			return time.Time{}
		}
		if t.After(at) {
			at = t
		}
	}
	return at
}

// downSpans returns the spans the store did not answer that overlap [from, to).
func (w *sliceWatcher) downSpans(from, to time.Time) []span {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []span
	for _, s := range w.down {
		end := s.To
		if end.IsZero() {
			end = time.Now()
		}
		if end.After(from) && s.From.Before(to) {
			out = append(out, span{s.From, end})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// leader returns the node leading the endpoints controller ("" if none).
func (b *bench) leader(ctx context.Context) string {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := b.st.Client().Get(cctx, endpoints.ElectionKey(b.st)+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// leases counts the node Leases in the store (-1 if it does not answer).
func (b *bench) leases(ctx context.Context) int {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	k, _ := b.st.Kinds().ByName("Lease")
	list, _, err := b.st.List(cctx, k, "kube-node-lease")
	if err != nil {
		return -1
	}
	return len(list)
}

// inNode runs a command in node n's namespace.
func inNode(ctx context.Context, n string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ip", append([]string{"netns", "exec", fmt.Sprintf("fjord-%s-%s", labName, n)}, args...)...).Output()
	return string(out), err
}

// proxyHas reports whether node n's service proxy sends anything to ip (a DNAT to it).
func proxyHas(ctx context.Context, n, ip string) (bool, error) {
	out, err := inNode(ctx, n, "nft", "list", "table", "ip", "fjord")
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "dnat to "+ip+":"), nil
}

// hasRoute reports whether node n routes cidr (fjord's routes, protocol 77).
func hasRoute(ctx context.Context, n, cidr string) bool {
	out, _ := inNode(ctx, n, "ip", "route", "show", "proto", "77")
	return strings.Contains(out, cidr)
}

// proxyWatch polls the service proxies of nodes (every 200 ms: listing a table costs
// CPU the traffic shares) and records when ip left each, then, once told the node is
// back (healed), when it returned; between the two it does not poll.
type proxyWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	healed chan struct{}
	mu     sync.Mutex
	gone   map[string]time.Time // node → first poll without ip
	back   map[string]time.Time // node → first poll with ip again after the heal
}

func watchProxies(ctx context.Context, nodes []string, ip string) *proxyWatch {
	ctx, cancel := context.WithCancel(ctx)
	p := &proxyWatch{cancel: cancel, done: make(chan struct{}), healed: make(chan struct{}),
		gone: map[string]time.Time{}, back: map[string]time.Time{}}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := func() bool {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(200 * time.Millisecond):
					return true
				}
			}
			// Until it is gone (or the cut ends first).
			for ctx.Err() == nil {
				if has, err := proxyHas(ctx, n, ip); err == nil && !has {
					p.mu.Lock()
					p.gone[n] = time.Now()
					p.mu.Unlock()
					break
				}
				select {
				case <-p.healed:
				default:
					if wait() {
						continue
					}
				}
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-p.healed:
			}
			for ctx.Err() == nil {
				if has, err := proxyHas(ctx, n, ip); err == nil && has {
					p.mu.Lock()
					p.back[n] = time.Now()
					p.mu.Unlock()
					return
				}
				if !wait() {
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(p.done) }()
	return p
}

// heal tells the watch the cut is over.
func (p *proxyWatch) heal() { close(p.healed) }

func (p *proxyWatch) stop() (gone, back map[string]time.Time) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone, p.back
}
