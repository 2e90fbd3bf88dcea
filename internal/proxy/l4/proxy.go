package l4

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("l4: proxy closed")

// Proxy runs the listeners of a set of services. Its methods are safe for
// concurrent use.
type Proxy struct {
	opts   Options
	ctx    context.Context // cancelled by Close; ends every connection
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy starts
	bufs   sync.Pool      // *[]byte of maxDatagram: UDP replies in flight

	mu       sync.Mutex // guards services and closed; held across Set
	services map[string]*service
	closed   bool
}

// service is the running state of one Service.
type service struct {
	spec Service
	bal  *balancer
	srv  server // nil while not listening
}

// server is the listener of one service, TCP or UDP.
type server interface {
	// addr returns the bound address.
	addr() netip.AddrPort
	// endpointsRemoved ends what must not outlive the given endpoints.
	endpointsRemoved(addrs []netip.AddrPort)
	// close stops listening. It does not wait for goroutines to end.
	close()
}

// New returns a Proxy with no services.
func New(opts Options) *Proxy {
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		opts:     opts.withDefaults(),
		ctx:      ctx,
		cancel:   cancel,
		bufs:     sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }},
		services: make(map[string]*service),
	}
}

// Set makes svcs the proxy's services. It is idempotent: calling it again
// with the same services changes nothing.
//
// If any service is invalid (bad field, duplicate key or listen address,
// endpoints rejected by sched.New) Set returns an error and changes
// nothing. Otherwise it applies every service; a service whose listener
// cannot be opened is reported in the returned error, keeps its counters
// and is retried by the next Set.
func (p *Proxy) Set(svcs []Service) error {
	if err := validate(svcs); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}

	// Build the schedulers of new and changed services first, so that an
	// invalid service changes nothing.
	built := make([]sched.Scheduler, len(svcs))
	var errs []error
	for i, s := range svcs {
		if cur := p.services[s.Key]; cur != nil && sameBalancing(cur.spec, s) {
			continue
		}
		sc, err := sched.New(s.schedulerName(), s.Endpoints, p.schedOptions())
		if err != nil {
			errs = append(errs, fmt.Errorf("service %q: %w", s.Key, err))
			continue
		}
		built[i] = sc
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Close every listener that goes away or moves before opening any, so
	// that services may swap ports in one Set.
	want := make(map[string]Service, len(svcs))
	for _, s := range svcs {
		want[s.Key] = s
	}
	for key, cur := range p.services {
		s, keep := want[key]
		if keep && sameListener(cur.spec, s) {
			continue
		}
		if cur.srv != nil {
			cur.srv.close()
			cur.srv = nil
		}
		if !keep {
			delete(p.services, key)
		}
	}

	for i, s := range svcs {
		cur := p.services[s.Key]
		if cur == nil {
			cur = &service{bal: newBalancer()}
			p.services[s.Key] = cur
		}
		cur.spec = s
		if built[i] != nil {
			removed, seeded := cur.bal.update(s.schedulerName(), slices.Clone(s.Endpoints), built[i])
			if !seeded {
				p.opts.Logger.Warn("l4: active connection counts only partly carried over", "service", s.Key)
			}
			if cur.srv != nil && len(removed) > 0 {
				cur.srv.endpointsRemoved(removed)
			}
		}
		if cur.srv == nil {
			srv, err := p.listen(s, cur.bal)
			if err != nil {
				errs = append(errs, fmt.Errorf("service %q: %w", s.Key, err))
				continue
			}
			cur.srv = srv
		}
	}
	return errors.Join(errs...)
}

// schedOptions returns the options for one new scheduler.
func (p *Proxy) schedOptions() sched.Options {
	return sched.Options{Rand: p.opts.NewRand(), MaglevTableSize: p.opts.MaglevTableSize}
}

// listen opens the listener of s and starts serving it.
func (p *Proxy) listen(s Service, bal *balancer) (server, error) {
	log := p.opts.Logger.With("service", s.Key)
	switch s.Protocol {
	case TCP:
		ln, err := p.opts.Listen.Listen(p.ctx, s.network(), s.ListenAddr.String())
		if err != nil {
			return nil, err
		}
		return p.serveTCP(ln, bal, log), nil
	case UDP:
		pc, err := p.opts.Listen.ListenPacket(p.ctx, s.network(), s.ListenAddr.String())
		if err != nil {
			return nil, err
		}
		return p.serveUDP(pc, bal, log), nil
	}
	return nil, fmt.Errorf("protocol %q", s.Protocol)
}

// Addr returns the address the service called key is bound to, and false
// when it is not listening.
func (p *Proxy) Addr(key string) (netip.AddrPort, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.services[key]; s != nil && s.srv != nil {
		return s.srv.addr(), true
	}
	return netip.AddrPort{}, false
}

// Stats returns the counters of every service, ordered by key.
func (p *Proxy) Stats() []ServiceStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ServiceStats, 0, len(p.services))
	for key, s := range p.services {
		st := ServiceStats{Key: key, Protocol: s.spec.Protocol}
		if s.srv != nil {
			st.ListenAddr = s.srv.addr()
		}
		s.bal.stats(&st)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ServiceStats) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Close stops every listener, ends every connection and UDP session, and
// waits for the proxy's goroutines to return. Calling it again does
// nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	for _, s := range p.services {
		if s.srv != nil {
			s.srv.close()
		}
	}
	clear(p.services)
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}
