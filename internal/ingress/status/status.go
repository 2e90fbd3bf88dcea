// Package status writes status.loadBalancer.ingress of the Ingresses fjord serves: the
// addresses clients reach them on, which external-dns, kubectl and conformance suites
// read. Exactly one ingress process writes (a coordination Lease through client-go's
// leader election, in the Kubernetes API or in fjord's store), from a rate-limited
// work queue keyed by Ingress, so a failed write is retried with backoff and a burst
// of changes to one Ingress is one write.
package status

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"

	"github.com/fjord-net/fjord/internal/leader"
	"github.com/fjord-net/fjord/internal/source"
)

// Writer writes one Ingress's status (ing carries it), guarded by the
// resourceVersion ing was read at.
type Writer interface {
	UpdateIngressStatus(ctx context.Context, ing *networkingv1.Ingress) error
}

// Config configures the status writer.
type Config struct {
	Lock   resourcelock.Interface // the Lease the ingress processes elect a writer on
	Writer Writer
	// Addresses returns what the served Ingresses are reached on: IPs or host names.
	Addresses func(ctx context.Context) ([]string, error)
	Timing    leader.Timing
	// Refresh is how often Addresses is asked again; 0 = 30s.
	Refresh time.Duration
	// Changes, if set, is an informer whose every change may change what Addresses
	// returns (PodHostIPs: the pods of the ingress's namespace). Addresses is then
	// asked again at once, so a sibling that starts on another node is in the status
	// within moments, not at the next Refresh.
	Changes cache.SharedIndexInformer
}

// Status keeps the served Ingresses' status current while it leads.
type Status struct {
	cfg       Config
	ingresses cache.SharedIndexInformer
	serves    func(*networkingv1.Ingress) bool
	log       *slog.Logger
	queue     atomic.Pointer[workqueue.TypedRateLimitingInterface[string]] // nil unless leading
	addrs     atomic.Pointer[[]networkingv1.IngressLoadBalancerIngress]
	changed   chan struct{} // Changes saw something; one pending signal is enough
}

// New returns a status writer over the shared Ingress informer; serves says which
// Ingresses are this controller's.
func New(cfg Config, ingresses cache.SharedIndexInformer, serves func(*networkingv1.Ingress) bool, log *slog.Logger) (*Status, error) {
	if cfg.Lock == nil || cfg.Writer == nil || cfg.Addresses == nil {
		return nil, errors.New("ingress status: Lock, Writer and Addresses are required")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	s := &Status{cfg: cfg, ingresses: ingresses, serves: serves, log: log.With("component", "ingress-status"), changed: make(chan struct{}, 1)}
	err := source.OnObject(ingresses, func(ing *networkingv1.Ingress, deleted bool) {
		if q := s.queue.Load(); q != nil && !deleted {
			(*q).Add(key(ing))
		}
	})
	if err == nil && cfg.Changes != nil {
		err = source.OnChange(cfg.Changes, func() {
			select {
			case s.changed <- struct{}{}:
			default:
			}
		})
	}
	return s, err
}

func key(ing *networkingv1.Ingress) string { return ing.Namespace + "/" + ing.Name }

// Run campaigns for the Lease and writes status while leading, until ctx ends.
func (s *Status) Run(ctx context.Context) {
	leader.Run(ctx, s.cfg.Lock, s.cfg.Timing, s.log, s.lead)
}

func (s *Status) lead(ctx context.Context) {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "ingress-status"})
	s.queue.Store(&q)
	defer func() {
		s.queue.Store(nil)
		q.ShutDown()
	}()
	go func() {
		for s.process(ctx, q) {
		}
	}()
	tick := time.NewTicker(s.cfg.Refresh)
	defer tick.Stop()
	// The first refresh of a term queues every Ingress: while another process led,
	// it wrote its own addresses. So does every periodic one; a refresh on a change
	// of the addresses' inputs queues them only if the addresses changed.
	full := true
	for {
		s.refresh(ctx, q, full)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			full = true
		case <-s.changed:
			full = false
		}
	}
}

// refresh asks for the addresses again and queues every Ingress when full or when
// the addresses changed: a full pass (a term's first one rewrites what another leader
// wrote; later ones catch an Ingress seen before its class was known). Unchanged
// status is not written.
func (s *Status) refresh(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], full bool) {
	raw, err := s.cfg.Addresses(ctx)
	if err != nil {
		s.log.Warn("cannot tell which addresses the ingress serves on; keeping the last", "err", err)
		if s.addrs.Load() == nil {
			return
		}
	} else {
		lb := LoadBalancer(raw)
		if old := s.addrs.Load(); old == nil || !equality.Semantic.DeepEqual(*old, lb) {
			s.addrs.Store(&lb)
			s.log.Info("ingress addresses", "addresses", raw)
			full = true
		}
	}
	if !full {
		return
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.ingresses.HasSynced) {
		return
	}
	s.queueAll(q)
}

func (s *Status) queueAll(q workqueue.TypedRateLimitingInterface[string]) {
	for _, ing := range source.List[*networkingv1.Ingress](s.ingresses) {
		q.Add(key(ing))
	}
}

// Recheck queues every Ingress again (a no-op unless leading): the controller calls
// it after each new Snapshot, since which Ingresses it serves may have changed.
func (s *Status) Recheck() {
	if q := s.queue.Load(); q != nil && s.ingresses.HasSynced() {
		s.queueAll(*q)
	}
}

func (s *Status) process(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	k, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(k)
	if err := s.sync(ctx, k); err != nil {
		s.log.Warn("writing Ingress status failed; retrying", "ingress", k, "err", err)
		q.AddRateLimited(k)
		return true
	}
	q.Forget(k)
	return true
}

func (s *Status) sync(ctx context.Context, k string) error {
	lb := s.addrs.Load()
	obj, ok, err := s.ingresses.GetStore().GetByKey(k)
	if err != nil || !ok || lb == nil {
		return err
	}
	ing := obj.(*networkingv1.Ingress)
	if !s.serves(ing) || equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, *lb) {
		return nil
	}
	upd := ing.DeepCopy()
	upd.Status.LoadBalancer.Ingress = slices.Clone(*lb)
	return s.cfg.Writer.UpdateIngressStatus(ctx, upd)
}

// LoadBalancer turns addresses into status entries: IPs as ip, anything else as
// hostname, sorted and without duplicates (the order ingress-nginx writes).
func LoadBalancer(addrs []string) []networkingv1.IngressLoadBalancerIngress {
	var ips []netip.Addr
	var hosts []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			ips = append(ips, ip.Unmap())
		} else if a != "" {
			hosts = append(hosts, a)
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	out := make([]networkingv1.IngressLoadBalancerIngress, 0, len(ips)+len(hosts))
	for _, ip := range ips {
		out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip.String()})
	}
	for _, h := range hosts {
		out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: h})
	}
	return out
}
