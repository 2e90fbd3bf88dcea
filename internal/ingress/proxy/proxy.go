package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

// Options configure a Proxy. Every field is optional.
type Options struct {
	// AccessLog receives one log-format-upstream line per request; nil
	// disables the access log.
	AccessLog io.Writer
	// Registerer receives the proxy's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Logger reports upstream errors and configuration notices.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// NewRequestID returns a $req_id for requests without X-Request-ID;
	// default 32 random hex characters.
	NewRequestID func() string
	// HTTPSPort is the port HTTP requests are redirected to (ssl-redirect);
	// default 443, which is left out of the Location header.
	HTTPSPort int
	// Health tunes passive health checking; zero fields take defaults.
	Health HealthOptions
	// NetHTTPOnly serves every connection with net/http and
	// httputil.ReverseProxy instead of the hand-written HTTP/1.1 path
	// (which otherwise serves all but HTTP/2): the slower reference
	// implementation, for comparisons and as a way back.
	NetHTTPOnly bool
	// ServerHeader is the Server header sent with server-tokens true;
	// default "fjord".
	ServerHeader string
}

// Proxy is an http.Handler that proxies requests according to the current
// Snapshot. Create it with New; it is safe for concurrent use.
type Proxy struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	newID     func() string
	cur       atomic.Pointer[active]
	swapMu    sync.Mutex // serialises Swap
	rp        *httputil.ReverseProxy
	lb        *balancer
	metrics   *metrics
	logStates sync.Pool        // *logState
	logs      *logSink         // nil without an access log
	defCert   *tls.Certificate // generated at New
}

// active is a Snapshot with what the proxy derived from it. It is
// immutable once stored.
type active struct {
	snap *Snapshot
	tr   *transport
	ups  map[UpstreamKey]*upstreamInfo
}

// upstreamInfo is what the request path needs of one upstream, resolved
// once per Snapshot rather than per request.
type upstreamInfo struct {
	eps  []netip.AddrPort
	name string         // $proxy_upstream_name
	rr   *atomic.Uint64 // the balancer's round-robin counter
}

// resolveUpstreams builds active.ups for s.
func (p *Proxy) resolveUpstreams(s *Snapshot) map[UpstreamKey]*upstreamInfo {
	ups := make(map[UpstreamKey]*upstreamInfo, len(s.Upstreams))
	for k, u := range s.Upstreams {
		ups[k] = &upstreamInfo{eps: u.Endpoints, name: k.Name(), rr: p.lb.counter(k)}
	}
	return ups
}

// New returns a Proxy that routes nothing (404) until the first Swap.
func New(opts Options) (*Proxy, error) {
	p := &Proxy{opts: opts, log: opts.Logger, now: opts.Now, newID: opts.NewRequestID}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.newID == nil {
		p.newID = randomRequestID
	}
	if p.opts.HTTPSPort == 0 {
		p.opts.HTTPSPort = 443
	}
	if p.opts.ServerHeader == "" {
		p.opts.ServerHeader = "fjord"
	}
	if opts.AccessLog != nil {
		p.logs = newLogSink(logWriterFor(opts.AccessLog))
	}
	p.lb = newBalancer(opts.Health.withDefaults(), p.now)
	p.metrics = newMetrics(opts.Registerer)
	p.logStates.New = func() any { return &logState{line: make([]byte, 0, 512)} }
	cert, err := selfSignedCert(p.now())
	if err != nil {
		return nil, err
	}
	p.defCert = cert
	p.rp = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    &upstreamTripper{p: p},
		ErrorHandler: p.upstreamError,
		ModifyResponse: func(r *http.Response) error {
			if x := exchangeFrom(r.Request.Context()); x == nil || !keepUpstreamServer(x.cfg) {
				r.Header.Del("Server")
			}
			return nil
		},
		BufferPool: newBufferPool(),
		ErrorLog:   slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	empty := &Snapshot{Routes: route.Build(nil, "", false), Config: nginxconf.Defaults(1)}
	p.cur.Store(&active{snap: empty, tr: newTransport(transportParamsOf(empty.Config)), ups: p.resolveUpstreams(empty)})
	return p, nil
}

// Swap makes a copy of in the current Snapshot. Requests that already started finish
// with the Snapshot they started with; connections are never closed by a
// Swap. The upstream connection pool is kept unless an upstream
// keep-alive or timeout setting changed; then a new pool is used for new
// requests and the old pool's idle connections are closed.
//
// A nil Routes routes nothing; a Config without a compiled LogFormat is
// replaced by ingress-nginx's defaults. Swap may be called concurrently.
func (p *Proxy) Swap(in *Snapshot) {
	s := *in
	if s.Routes == nil {
		s.Routes = route.Build(nil, "", false)
	}
	if s.Config.LogFormat == nil {
		s.Config = nginxconf.Defaults(1)
	}
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	old := p.cur.Load()
	next := &active{snap: &s, tr: old.tr, ups: p.resolveUpstreams(&s)}
	params := transportParamsOf(s.Config)
	if params != old.tr.params {
		next.tr = newTransport(params)
	}
	p.cur.Store(next)
	live := map[routeLabels]bool{}
	for _, b := range s.Routes.IngressBackends() {
		live[routeLabels{b.IngressName, b.Namespace, b.Service}] = true
	}
	p.metrics.keepOnly(live)
	eps := p.lb.keepOnly(s.Upstreams)
	next.tr.pool.forget(eps)
	if next.tr != old.tr {
		old.tr.retire()
	}
}

// Snapshot returns the current Snapshot.
func (p *Proxy) Snapshot() *Snapshot { return p.cur.Load().snap }

// Close closes idle upstream connections and writes access-log lines
// still pending.
func (p *Proxy) Close() {
	p.cur.Load().tr.closeIdle()
	if p.logs != nil {
		p.logs.flush()
	}
}

// begin counts a request in progress for the access log (see logSink).
func (p *Proxy) begin() {
	if p.logs != nil {
		p.logs.begin()
	}
}

// randomRequestID returns 32 random hex characters, like nginx's $request_id.
func randomRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
