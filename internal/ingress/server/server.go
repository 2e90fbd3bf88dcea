// Package server runs fjord's ingress: the controller, the proxy on an
// HTTP and an HTTPS listener, and a metrics listener with /metrics and
// /healthz, wired from one Config. It is what `fjord ingress` runs.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fjord-net/fjord/internal/ingress/controller"
	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/ingress/status"
	"github.com/fjord-net/fjord/internal/source"
)

// Config configures Run.
type Config struct {
	HTTPAddr    string // plain HTTP listener, e.g. ":80"
	HTTPSAddr   string // TLS listener, e.g. ":443"
	MetricsAddr string // /metrics and /healthz; "" = off

	// ServerHeader is the Server response header with server-tokens true
	// (proxy.Options.ServerHeader).
	ServerHeader string

	ConfigMap string // namespace/name of the ingress-nginx ConfigMap
	Class     string // ingress class served

	// AccessLog receives the access log; nil = off.
	AccessLog io.Writer
	// SetMaxProcs applies worker-processes to runtime.GOMAXPROCS ("auto"
	// restores Go's default, which follows the CPU quota). Only for a
	// process that runs nothing else.
	SetMaxProcs bool
	// ShutdownTimeout bounds the graceful shutdown; default 30s.
	ShutdownTimeout time.Duration

	// Source gives the shared informers; Run starts it.
	Source *source.Source
	// Status, if set, writes status.loadBalancer of the served Ingresses.
	Status *status.Config
	Logger *slog.Logger
	// Listening, if set, is called with the listeners' addresses once
	// they are bound (metrics is nil when off), before serving starts.
	Listening func(http, https, metrics net.Addr)
}

// Run serves until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to ShutdownTimeout) and
// returns. Listener errors at start are returned at once.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	numCPU := runtime.GOMAXPROCS(0) // Go's default: CPUs, or the cgroup quota

	lh, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	defer lh.Close()
	ls, err := net.Listen("tcp", cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("https listener: %w", err)
	}
	defer ls.Close()
	var lm net.Listener
	if cfg.MetricsAddr != "" {
		if lm, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		defer lm.Close()
	}

	if cfg.Listening != nil {
		var ma net.Addr
		if lm != nil {
			ma = lm.Addr()
		}
		cfg.Listening(lh.Addr(), ls.Addr(), ma)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := proxy.New(proxy.Options{
		AccessLog:    cfg.AccessLog,
		Registerer:   reg,
		Logger:       log,
		HTTPSPort:    portOf(ls.Addr()),
		ServerHeader: cfg.ServerHeader,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	initial := nginxconf.Defaults(numCPU)
	// Nothing is accepted before the first Snapshot: until then connections wait in
	// the kernel's backlog (a restarted ingress answers them with its routes, not with
	// 404s from an empty table).
	routed := make(chan struct{})
	fh := proxy.NewFrontend(gate(lh, routed), p, nil, initial, log)
	fs := proxy.NewFrontend(gate(ls, routed), p, p.TLSConfig(), initial, log)
	sink := &sink{p: p, fronts: []*proxy.Frontend{fh, fs}, setProcs: cfg.SetMaxProcs, log: log, routed: routed}

	ctl, err := controller.New(controller.Config{
		Source: cfg.Source, Sink: sink, ConfigMap: cfg.ConfigMap, Class: cfg.Class,
		NumCPU: numCPU, Logger: log,
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctl.Run(runCtx)
	}()
	if cfg.Status != nil {
		sw, err := status.New(*cfg.Status, ctl.Ingresses(), ctl.Serves, log)
		if err != nil {
			return err
		}
		recheck := sw.Recheck
		sink.afterSwap.Store(&recheck)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sw.Run(runCtx)
		}()
	}
	cfg.Source.Start(runCtx)

	var ms *http.Server
	if lm != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !ctl.Synced() {
				http.Error(w, "not synced with the store yet", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		})
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(lm)
	}
	log.Info("ingress serving", "http", lh.Addr().String(), "https", ls.Addr().String(), "metrics", cfg.MetricsAddr,
		"configmap", cfg.ConfigMap, "class", cfg.Class)

	<-ctx.Done()
	log.Info("ingress shutting down", "timeout", cfg.ShutdownTimeout)
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer scancel()
	errs := []error{fh.Shutdown(sctx), fs.Shutdown(sctx)}
	if ms != nil {
		errs = append(errs, ms.Shutdown(sctx))
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sink applies a Snapshot to the proxy, the frontends and GOMAXPROCS.
type sink struct {
	p        *proxy.Proxy
	fronts   []*proxy.Frontend
	setProcs bool
	log      *slog.Logger
	mu       sync.Mutex
	procs    int // last applied worker-processes; 0 = never, -1 = auto
	// afterSwap, if set, runs after every Snapshot (the status writer's Recheck).
	afterSwap atomic.Pointer[func()]
	// routed is closed once the first Snapshot is in: the listeners' gates open.
	routed     chan struct{}
	routedOnce sync.Once
}

func (s *sink) Swap(snap *proxy.Snapshot) {
	s.p.Swap(snap)
	for _, f := range s.fronts {
		f.Apply(snap.Config)
	}
	if f := s.afterSwap.Load(); f != nil {
		(*f)()
	}
	s.routedOnce.Do(func() {
		s.log.Info("routes loaded; accepting connections")
		close(s.routed)
	})
	if !s.setProcs {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := snap.Config.WorkerProcesses
	if snap.Config.WorkerProcessesAuto {
		want = -1
	}
	if want == s.procs {
		return
	}
	s.procs = want
	if want == -1 {
		runtime.SetDefaultGOMAXPROCS()
	} else {
		runtime.GOMAXPROCS(want)
	}
	s.log.Info("worker-processes applied", "gomaxprocs", runtime.GOMAXPROCS(0))
}

// gatedListener accepts nothing until open is closed; connections made meanwhile wait
// in the kernel's backlog. Closing it ends a waiting Accept with net.ErrClosed.
type gatedListener struct {
	net.Listener
	open   <-chan struct{}
	closed chan struct{}
	once   sync.Once
}

func gate(l net.Listener, open <-chan struct{}) *gatedListener {
	return &gatedListener{Listener: l, open: open, closed: make(chan struct{})}
}

func (g *gatedListener) Accept() (net.Conn, error) {
	select {
	case <-g.open:
	case <-g.closed:
		return nil, net.ErrClosed
	}
	return g.Listener.Accept()
}

func (g *gatedListener) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Listener.Close()
}

func portOf(a net.Addr) int {
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return 443
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 443
	}
	return n
}
