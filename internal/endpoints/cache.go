package endpoints

import (
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/objects"
)

// watched kinds, by Kind name.
const (
	kindService = "Service"
	kindPod     = "Pod"
	kindLease   = "Lease"
	kindSlice   = "EndpointSlice"
)

// LeaseNamespace holds one Lease per live node.
const LeaseNamespace = nodereg.LeaseNamespace

var watchedKinds = []string{kindService, kindPod, kindLease, kindSlice}

// cache is the controller's view of the objects it plans from, fed by the shared
// informers' events, plus the set of services whose slices may be out of date. It plans nothing until every kind has been
// listed once: a partial view would delete endpoints that are merely not loaded yet.
type cache struct {
	mu       sync.Mutex
	services map[types.NamespacedName]*corev1.Service
	pods     map[string]map[string]*corev1.Pod // namespace → name
	live     *liveness                         // which nodes are alive, from their Leases
	now      func() time.Time                  // the clock Lease events are timed on
	slices   map[string]map[string]*discoveryv1.EndpointSlice
	owned    map[types.NamespacedName]map[string]*discoveryv1.EndpointSlice // managed slices by their Service
	listed   map[string]bool
	dirty    map[types.NamespacedName]bool
	all      bool // every service is dirty
}

// newCache returns an empty cache; now is the clock (nil = time.Now).
func newCache(now func() time.Time) *cache {
	if now == nil {
		now = time.Now
	}
	return &cache{
		now:      now,
		services: map[types.NamespacedName]*corev1.Service{},
		pods:     map[string]map[string]*corev1.Pod{},
		live:     newLiveness(),
		slices:   map[string]map[string]*discoveryv1.EndpointSlice{},
		owned:    map[types.NamespacedName]map[string]*discoveryv1.EndpointSlice{},
		listed:   map[string]bool{},
		dirty:    map[types.NamespacedName]bool{},
	}
}

// markListed records that a kind's initial list has been fed in through update.
func (c *cache) markListed(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed[kind] = true
	c.all = true
}

// replace installs a fresh List of one kind and marks everything dirty.
func (c *cache) replace(kind string, list []objects.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch kind {
	case kindService:
		c.services = map[types.NamespacedName]*corev1.Service{}
	case kindPod:
		c.pods = map[string]map[string]*corev1.Pod{}
	case kindLease:
		c.live.reset()
	case kindSlice:
		c.slices = map[string]map[string]*discoveryv1.EndpointSlice{}
		c.owned = map[types.NamespacedName]map[string]*discoveryv1.EndpointSlice{}
	}
	for _, o := range list {
		c.put(o)
	}
	c.listed[kind] = true
	c.all = true
}

// update applies one watched change and marks the services it may affect dirty.
func (c *cache) update(obj objects.Object, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.Service:
		c.dirty[key(o.Namespace, o.Name)] = true
	case *corev1.Pod:
		c.markPodServices(o)
		if old := c.pods[o.Namespace][o.Name]; old != nil {
			c.markPodServices(old)
		}
	case *discoveryv1.EndpointSlice:
		if svc := o.Labels[LabelServiceName]; svc != "" {
			c.dirty[key(o.Namespace, svc)] = true
		}
	default: // a Lease: any pod may be on that node, if its liveness changed
		now := c.now()
		was := c.live.alive(obj.GetName(), now)
		if deleted {
			c.live.gone(obj.GetName(), leaseDuration(obj), now)
		} else {
			c.live.seen(obj.GetName(), leaseDuration(obj), now)
		}
		if c.live.alive(obj.GetName(), now) != was {
			c.all = true
		}
		return
	}
	if deleted {
		c.remove(obj)
	} else {
		c.put(obj)
	}
}

func (c *cache) put(obj objects.Object) {
	switch o := obj.(type) {
	case *corev1.Service:
		c.services[key(o.Namespace, o.Name)] = o
	case *corev1.Pod:
		if c.pods[o.Namespace] == nil {
			c.pods[o.Namespace] = map[string]*corev1.Pod{}
		}
		c.pods[o.Namespace][o.Name] = o
	case *discoveryv1.EndpointSlice:
		if c.slices[o.Namespace] == nil {
			c.slices[o.Namespace] = map[string]*discoveryv1.EndpointSlice{}
		}
		c.unindex(c.slices[o.Namespace][o.Name])
		c.slices[o.Namespace][o.Name] = o
		if svc := o.Labels[LabelServiceName]; Managed(o) && svc != "" {
			k := key(o.Namespace, svc)
			if c.owned[k] == nil {
				c.owned[k] = map[string]*discoveryv1.EndpointSlice{}
			}
			c.owned[k][o.Name] = o
		}
	default:
		c.live.seen(obj.GetName(), leaseDuration(obj), c.now())
	}
}

// leaseDuration is a Lease's spec.leaseDurationSeconds (0 when unset or not a Lease).
func leaseDuration(obj objects.Object) time.Duration {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Spec.LeaseDurationSeconds != nil {
		return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return 0
}

func (c *cache) remove(obj objects.Object) {
	switch o := obj.(type) {
	case *corev1.Service:
		delete(c.services, key(o.Namespace, o.Name))
	case *corev1.Pod:
		delete(c.pods[o.Namespace], o.Name)
	case *discoveryv1.EndpointSlice:
		c.unindex(c.slices[o.Namespace][o.Name])
		delete(c.slices[o.Namespace], o.Name)
	}
}

// unindex drops a stored slice (nil: none) from the by-Service index.
func (c *cache) unindex(es *discoveryv1.EndpointSlice) {
	if es == nil {
		return
	}
	k := key(es.Namespace, es.Labels[LabelServiceName])
	if byName := c.owned[k]; byName != nil && byName[es.Name] == es {
		delete(byName, es.Name)
		if len(byName) == 0 {
			delete(c.owned, k)
		}
	}
}

func (c *cache) markPodServices(pod *corev1.Pod) {
	for k, svc := range c.services {
		if k.Namespace == pod.Namespace && Selects(svc) &&
			labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			c.dirty[k] = true
		}
	}
}

// markAll makes the next plan cover every service (the periodic resync).
func (c *cache) markAll() {
	c.mu.Lock()
	c.all = true
	c.mu.Unlock()
}

// markDirty puts services back after a failed write.
func (c *cache) markDirty(keys []types.NamespacedName) {
	c.mu.Lock()
	for _, k := range keys {
		c.dirty[k] = true
	}
	c.mu.Unlock()
}

// takePlan empties the dirty set and returns the writes those services need, with the
// services it covered (to put back if the writes fail). ok is false until every kind
// has been listed.
func (c *cache) takePlan() (p Plan, covered []types.NamespacedName, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range watchedKinds {
		if !c.listed[k] {
			return Plan{}, nil, false
		}
	}
	live, expired := c.live.set(c.now())
	if expired { // a node given time to come back did not
		c.all = true
	}
	if c.all {
		for k := range c.services {
			c.dirty[k] = true
		}
		for k := range c.owned {
			c.dirty[k] = true
		}
		c.all = false
	}
	for k := range c.dirty {
		covered = append(covered, k)
	}
	sort.Slice(covered, func(i, j int) bool {
		if covered[i].Namespace != covered[j].Namespace {
			return covered[i].Namespace < covered[j].Namespace
		}
		return covered[i].Name < covered[j].Name
	})
	c.dirty = map[types.NamespacedName]bool{}
	for _, k := range covered {
		var desired []*discoveryv1.EndpointSlice
		if svc := c.services[k]; svc != nil {
			desired = Desired(svc, c.podList(k.Namespace), live)
		}
		p.add(planService(k.Name, desired, c.slices[k.Namespace], c.owned[k]))
	}
	return p, covered, true
}

// nextLivenessChange is when a node's liveness changes without any event (zero:
// never): the controller plans again then.
func (c *cache) nextLivenessChange() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live.next()
}

func (c *cache) podList(ns string) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(c.pods[ns]))
	for _, p := range c.pods[ns] {
		out = append(out, p)
	}
	return out
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
