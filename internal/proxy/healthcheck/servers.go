package healthcheck

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ServiceServers holds one HTTP server per healthCheckNodePort and node
// address. Set is given the whole desired state and opens and closes only
// the difference; a server whose Service keeps its port keeps its listener.
// It is safe for concurrent use.
type ServiceServers struct {
	listen  func(network, address string) (net.Listener, error)
	healthy func() bool // the service proxy's health, reported with every answer
	log     *slog.Logger

	mu       sync.Mutex
	servers  map[netip.AddrPort]*hcServer
	services map[string]ServiceHealth // by "namespace/name": what the handlers read
}

// hcServer is one listener answering for one Service.
type hcServer struct {
	name string // namespace/name
	srv  *http.Server
}

// NewServiceServers returns an empty set. listen nil means net.Listen;
// healthy reports the proxy's health (nil: always healthy).
func NewServiceServers(listen func(network, address string) (net.Listener, error), healthy func() bool, log *slog.Logger) *ServiceServers {
	if listen == nil {
		listen = net.Listen
	}
	if healthy == nil {
		healthy = func() bool { return true }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ServiceServers{listen: listen, healthy: healthy, log: log,
		servers: map[netip.AddrPort]*hcServer{}, services: map[string]ServiceHealth{}}
}

// Set makes the servers answer for svcs on every address in addrs. A
// listener that cannot be opened is reported in the error (naming the
// Service and address) and tried again by the next Set; the others are
// served regardless.
func (s *ServiceServers) Set(addrs []netip.Addr, svcs []ServiceHealth) error {
	want := map[netip.AddrPort]string{}
	services := make(map[string]ServiceHealth, len(svcs))
	for _, sh := range svcs {
		name := sh.Namespace + "/" + sh.Name
		services[name] = sh
		for _, a := range addrs {
			want[netip.AddrPortFrom(a, sh.Port)] = name
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services = services
	for ap, hs := range s.servers {
		if want[ap] != hs.name {
			hs.srv.Close()
			delete(s.servers, ap)
		}
	}
	var errs []error
	for ap, name := range want {
		if s.servers[ap] != nil {
			continue
		}
		ln, err := s.listen("tcp", ap.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("healthCheckNodePort of Service %s on %s: %w", name, ap, err))
			continue
		}
		hs := &hcServer{name: name, srv: &http.Server{Handler: s.handler(name), ReadHeaderTimeout: 10 * time.Second}}
		s.servers[ap] = hs
		go func() {
			if err := hs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("health-check server stopped", "service", name, "address", ap.String(), "err", err)
			}
		}()
	}
	return errors.Join(errs...)
}

// Addrs returns the addresses listened on, for tests and logs.
func (s *ServiceServers) Addrs() map[netip.AddrPort]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.AddrPort]string, len(s.servers))
	for ap, hs := range s.servers {
		out[ap] = hs.name
	}
	return out
}

// Close stops every server.
func (s *ServiceServers) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ap, hs := range s.servers {
		hs.srv.Close()
		delete(s.servers, ap)
	}
}

// handler answers as kube-proxy does: 200 when the Service has local
// endpoints and the proxy is healthy, else 503, with the same JSON body.
func (s *ServiceServers) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		sh, ok := s.services[name]
		s.mu.Unlock()
		if !ok {
			return // being closed
		}
		healthy := s.healthy()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if sh.LocalEndpoints > 0 && healthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
			sh.Namespace, sh.Name, sh.LocalEndpoints, healthy)
	})
}
