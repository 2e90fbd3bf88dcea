package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// Frontend serves a handler on one listener, plain or TLS.
//
// Connection settings come from the ingress-nginx configuration:
// keep-alive is the http.Server's IdleTimeout, client-header-timeout its
// ReadHeaderTimeout (which also bounds the TLS handshake, so slow clients
// cannot hold a connection open by dribbling headers), and
// worker-processes the number of goroutines accepting connections;
// worker-processes × max-worker-connections bounds the connections held at
// once.
// Because an http.Server's settings cannot change while it serves, Apply
// with different settings starts a new http.Server "generation" on the
// same listener: new connections go to it, while connections of older
// generations keep being served, with their old settings, until they end
// by themselves. No connection is closed by a configuration change.
//
// When the handler is a Proxy (and not Options.NetHTTPOnly), a
// generation serves HTTP/1.x connections itself on the hand-written path
// (frontend_fast.go) with the same settings, and its http.Server only
// serves the TLS connections that negotiated HTTP/2.
type Frontend struct {
	l      net.Listener
	tlsCfg *tls.Config
	h      http.Handler
	log    *slog.Logger
	fast   *Proxy // non-nil: HTTP/1.x connections take the hand-written path
	bufs   bufPools

	conns chan net.Conn // accepted, waiting for a generation's Serve
	done  chan struct{} // closed when the listener is closed

	mu      sync.Mutex
	params  frontendParams
	running int // accept loops
	// active counts the client connections held (or being accepted): at
	// params.maxConns the accept loops wait on slot, leaving new
	// connections in the kernel's backlog, as nginx does when its
	// worker_connections are taken.
	active int
	slot   sync.Cond
	cur    *generation
	gens   map[*generation]struct{} // every generation not yet finished
	closed bool
}

// frontendParams are the http.Server settings of a generation.
type frontendParams struct {
	idle     time.Duration // keep-alive
	header   time.Duration // client-header-timeout
	workers  int           // worker-processes: accept loops
	head     headLimits    // client-header-buffer-size, large-client-header-buffers
	maxConns int           // worker-processes × max-worker-connections
}

func frontendParamsOf(c nginxconf.Config) frontendParams {
	return frontendParams{idle: c.KeepAlive, header: c.ClientHeaderTimeout, workers: max(c.WorkerProcesses, 1),
		head:     headLimits{first: c.ClientHeaderBufferSize, size: c.LargeClientHeaderBuffers.Size, count: c.LargeClientHeaderBuffers.Count},
		maxConns: c.MaxConnections(openFileLimit())}
}

// maxHeaderBytes is the http.Server's limit for the same buffers.
func (p frontendParams) maxHeaderBytes() int {
	if p.head.size == 0 {
		return 1 << 20
	}
	return p.head.first + p.head.count*p.head.size
}

// NewFrontend starts serving h on l with cfg's connection settings.
// tlsCfg nil serves plain HTTP; otherwise every connection is TLS (use
// Proxy.TLSConfig). logger may be nil.
func NewFrontend(l net.Listener, h http.Handler, tlsCfg *tls.Config, cfg nginxconf.Config, logger *slog.Logger) *Frontend {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Frontend{
		l: l, tlsCfg: tlsCfg, h: h, log: logger,
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
		gens:  map[*generation]struct{}{},
	}
	f.slot.L = &f.mu
	if p, ok := h.(*Proxy); ok && !p.opts.NetHTTPOnly {
		f.fast = p
	}
	f.mu.Lock()
	f.applyLocked(frontendParamsOf(cfg), true)
	f.mu.Unlock()
	return f
}

// Addr returns the listener's address.
func (f *Frontend) Addr() net.Addr { return f.l.Addr() }

// Apply takes new connection settings from cfg. It is cheap when they did
// not change.
func (f *Frontend) Apply(cfg nginxconf.Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.applyLocked(frontendParamsOf(cfg), false)
}

func (f *Frontend) applyLocked(p frontendParams, first bool) {
	if !first && p == f.params {
		return
	}
	f.params = p
	f.slot.Broadcast() // the limit may have grown; loops may have to end
	for f.running < p.workers {
		f.running++
		go f.acceptLoop()
	}
	old := f.cur
	f.cur = f.startGeneration(p)
	if old != nil {
		old.retire()
	}
}

// acceptLoop accepts connections and hands them to the current generation
// until the listener is closed or there are more loops than workers.
func (f *Frontend) acceptLoop() {
	backoff := time.Duration(0)
	for {
		f.mu.Lock()
		for f.active >= f.params.maxConns && f.params.maxConns > 0 && !f.closed && f.running <= f.params.workers {
			f.slot.Wait()
		}
		if f.running > f.params.workers {
			f.running--
			f.mu.Unlock()
			return
		}
		f.active++ // a slot for the connection about to be accepted
		f.mu.Unlock()
		c, err := f.l.Accept()
		if err != nil {
			f.release()
			if errors.Is(err, net.ErrClosed) {
				f.closeDone()
				return
			}
			// EMFILE and friends: back off like net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			f.log.Warn("accept failed; retrying", "addr", f.l.Addr().String(), "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-f.done:
				return
			}
		}
		backoff = 0
		if f.fast != nil {
			f.mu.Lock()
			g := f.cur
			g.mu.Lock()
			g.conns++
			g.mu.Unlock()
			f.mu.Unlock()
			go g.serveFast(c)
			continue
		}
		select {
		case f.conns <- c:
		case <-f.done:
			c.Close()
			f.release()
			return
		}
	}
}

// release gives back the slot of a connection that ended.
func (f *Frontend) release() {
	f.mu.Lock()
	f.active--
	f.mu.Unlock()
	f.slot.Signal()
}

// Conns returns the number of client connections held now.
func (f *Frontend) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func (f *Frontend) closeDone() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones to finish, like http.Server.Shutdown, for every generation.
// Upgraded (hijacked) connections are not waited for.
func (f *Frontend) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	f.slot.Broadcast()
	gens := make([]*generation, 0, len(f.gens))
	for g := range f.gens {
		gens = append(gens, g)
	}
	f.mu.Unlock()
	err := f.l.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	f.closeDone()
	var wg sync.WaitGroup
	errs := make([]error, len(gens))
	errsFast := make([]error, len(gens))
	for i, g := range gens {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[i] = g.srv.Shutdown(ctx)
		}()
		go func() {
			defer wg.Done()
			errsFast[i] = g.shutdownFast(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(append(append(errs, errsFast...), err)...)
}

// generation is one http.Server serving connections handed to it while
// it was current.
type generation struct {
	f       *Frontend
	params  frontendParams
	srv     *http.Server
	ln      *genListener
	mu      sync.Mutex
	conns   int // connections not yet closed or hijacked
	retired bool

	// The hand-written path's connections (see frontend_fast.go).
	fastConns map[*h1conn]struct{}
	stopping  atomic.Bool   // Shutdown: close connections between requests
	handoff   chan net.Conn // TLS connections that chose h2, for srv
}

func (f *Frontend) startGeneration(p frontendParams) *generation {
	g := &generation{f: f, params: p, fastConns: map[*h1conn]struct{}{}, handoff: make(chan net.Conn)}
	g.ln = &genListener{f: f, src: f.conns, stop: make(chan struct{})}
	if f.fast != nil {
		// net/http serves only what the fast path hands over: h2.
		g.ln.src = g.handoff
	}
	g.srv = &http.Server{
		Handler:                      f.h,
		ReadHeaderTimeout:            p.header,
		IdleTimeout:                  p.idle,
		MaxHeaderBytes:               p.maxHeaderBytes(),
		DisableGeneralOptionsHandler: true,
		ConnContext:                  func(ctx context.Context, _ net.Conn) context.Context { return withConnState(ctx) },
		ConnState:                    g.track,
		ErrorLog:                     slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
	if p.idle <= 0 {
		g.srv.SetKeepAlivesEnabled(false)
	}
	f.gens[g] = struct{}{}
	var l net.Listener = g.ln
	if f.tlsCfg != nil && f.fast == nil {
		l = tls.NewListener(g.ln, f.tlsCfg)
	}
	go g.srv.Serve(l)
	return g
}

// track counts the generation's connections so that a retired generation
// is forgotten once its last connection ends.
func (g *generation) track(_ net.Conn, s http.ConnState) {
	g.mu.Lock()
	switch s {
	case http.StateNew:
		g.conns++
	case http.StateClosed, http.StateHijacked:
		g.conns--
		// A hijacked connection (an Upgrade on the net/http path) leaves the
		// count here, though it lives on as a tunnel.
		defer g.f.release()
	}
	finished := g.retired && g.conns == 0
	g.mu.Unlock()
	if finished {
		g.forget()
	}
}

// retire stops handing new connections to the generation.
func (g *generation) retire() {
	g.ln.Close()
	g.mu.Lock()
	g.retired = true
	finished := g.conns == 0
	g.mu.Unlock()
	if finished {
		go g.forget()
	}
}

func (g *generation) forget() {
	g.f.mu.Lock()
	delete(g.f.gens, g)
	g.f.mu.Unlock()
}

// genListener gives a generation the connections accepted by the
// Frontend's accept loops, until it is closed.
type genListener struct {
	f    *Frontend
	src  chan net.Conn
	stop chan struct{}
	once sync.Once
}

func (l *genListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.src:
		return c, nil
	case <-l.stop:
		return nil, net.ErrClosed
	case <-l.f.done:
		return nil, net.ErrClosed
	}
}

func (l *genListener) Close() error {
	l.once.Do(func() { close(l.stop) })
	return nil
}

func (l *genListener) Addr() net.Addr { return l.f.l.Addr() }

// openFileLimit is the process's RLIMIT_NOFILE (Go raises the soft limit
// to the hard one at start), for max-worker-open-files 0.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
