package proxy

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// peekAfter is how long a connection must have been idle before it is
// checked for a close by the upstream when taken from the pool. Servers
// close idle keep-alive connections after a second or more; below this a
// check would cost a system call for nothing on a busy pool.
const peekAfter = 5 * time.Millisecond

// upstreamPool is the hand-written client's connection pool for one set
// of transportParams: a stack of idle connections per endpoint (most
// recently used on top, so a busy pool keeps reusing warm connections
// and the rest age out), at most upstream-keepalive-connections each,
// closed after upstream-keepalive-timeout.
type upstreamPool struct {
	params transportParams
	dialer net.Dialer
	idleTO time.Duration

	mu      sync.Mutex
	eps     map[netip.AddrPort]*epPool
	retired bool
	sweep   *time.Timer // armed while any connection is idle
}

// epPool is one endpoint's idle stack. Its fields are guarded by the
// pool's mutex, except name, which is immutable.
type epPool struct {
	addr netip.AddrPort
	name string // addr.String(), for $upstream_addr
	idle []*upConn
}

func newUpstreamPool(params transportParams) *upstreamPool {
	idle := params.keepaliveTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	return &upstreamPool{
		params: params,
		dialer: net.Dialer{Timeout: params.connectTimeout, KeepAlive: 30 * time.Second},
		idleTO: idle,
		eps:    map[netip.AddrPort]*epPool{},
	}
}

// endpoint returns ep's pool entry, creating it.
func (p *upstreamPool) endpoint(ep netip.AddrPort) *epPool {
	p.mu.Lock()
	e := p.eps[ep]
	if e == nil {
		e = &epPool{addr: ep, name: ep.String()}
		p.eps[ep] = e
	}
	p.mu.Unlock()
	return e
}

// get returns an idle connection to e, or dials one. reused says which.
func (p *upstreamPool) get(e *epPool) (c *upConn, reused bool, err error) {
	for {
		p.mu.Lock()
		n := len(e.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c = e.idle[n-1]
		e.idle[n-1] = nil
		e.idle = e.idle[:n-1]
		p.mu.Unlock()
		idle := time.Since(c.idleSince)
		if idle >= p.idleTO || idle >= peekAfter && c.closedByPeer() {
			c.close()
			continue
		}
		return c, true, nil
	}
	c, err = p.dial(e)
	return c, false, err
}

// dial opens a new connection to e (proxy-connect-timeout).
func (p *upstreamPool) dial(e *epPool) (*upConn, error) {
	nc, err := p.dialer.DialContext(context.Background(), "tcp", e.name)
	if err != nil {
		return nil, err
	}
	return newUpConn(nc, e, p.params), nil
}

// put returns a connection whose last response was read completely and
// which may carry another request; anything else must be closed instead.
func (p *upstreamPool) put(c *upConn) {
	if p.params.keepaliveConns <= 0 {
		c.close()
		return
	}
	c.idleSince = time.Now()
	p.mu.Lock()
	e := c.ep
	if p.retired || len(e.idle) >= p.params.keepaliveConns || p.eps[e.addr] != e {
		p.mu.Unlock()
		c.close()
		return
	}
	e.idle = append(e.idle, c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.idleTO, p.sweepIdle)
	}
	p.mu.Unlock()
}

// sweepIdle closes connections idle for longer than
// upstream-keepalive-timeout and re-arms itself while any remain.
func (p *upstreamPool) sweepIdle() {
	var old []*upConn
	p.mu.Lock()
	now := time.Now()
	any := false
	for _, e := range p.eps {
		// The stack is ordered by idleSince, oldest first.
		i := 0
		for i < len(e.idle) && now.Sub(e.idle[i].idleSince) >= p.idleTO {
			old = append(old, e.idle[i])
			i++
		}
		if i > 0 {
			e.idle = append(e.idle[:0], e.idle[i:]...)
		}
		any = any || len(e.idle) > 0
	}
	p.sweep = nil
	if any && !p.retired {
		p.sweep = time.AfterFunc(p.idleTO/2, p.sweepIdle)
	}
	p.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// closeIdle closes every idle connection; retire also makes the pool
// close connections handed back to it, for a pool that new requests no
// longer use.
func (p *upstreamPool) closeIdle() { p.drain(false) }
func (p *upstreamPool) retire()    { p.drain(true) }

func (p *upstreamPool) drain(retire bool) {
	var all []*upConn
	p.mu.Lock()
	p.retired = p.retired || retire
	for _, e := range p.eps {
		all = append(all, e.idle...)
		e.idle = nil
	}
	p.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

// forget drops endpoints that are no longer in any upstream, closing
// their idle connections.
func (p *upstreamPool) forget(keep map[netip.AddrPort]bool) {
	var all []*upConn
	p.mu.Lock()
	for a, e := range p.eps {
		if !keep[a] {
			all = append(all, e.idle...)
			e.idle = nil
			delete(p.eps, a)
		}
	}
	p.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}
