package l4

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// Protocols a Service may use.
const (
	TCP = "TCP"
	UDP = "UDP"
)

// DefaultScheduler is the scheduler of a Service that names none. It is the
// IPVS default.
const DefaultScheduler = "wlc"

// Service is one proxied service: where the proxy listens and the endpoints
// it spreads connections over.
type Service struct {
	// Key identifies the service across calls to Proxy.Set; it is unique
	// within one call.
	Key string
	// Protocol is TCP or UDP.
	Protocol string
	// ListenAddr is where the proxy listens, for example 0.0.0.0:30123.
	// An IPv4 address listens on IPv4 only and an IPv6 address on IPv6
	// only. Port 0 picks a free port; Proxy.Addr reports it.
	ListenAddr netip.AddrPort
	// Scheduler is a name accepted by sched.New; lc and wlc are the reason
	// this package exists. Empty means DefaultScheduler.
	Scheduler string
	// Endpoints are the backends. Weight 0 quiesces an endpoint: it gets
	// no new connection but keeps its established ones.
	Endpoints []sched.Endpoint
}

// schedulerName returns the scheduler to use for s.
func (s Service) schedulerName() string {
	if s.Scheduler == "" {
		return DefaultScheduler
	}
	return s.Scheduler
}

// network returns the Go network name to listen on: tcp4, tcp6, udp4 or udp6.
func (s Service) network() string {
	n := "tcp"
	if s.Protocol == UDP {
		n = "udp"
	}
	if s.ListenAddr.Addr().Unmap().Is4() {
		return n + "4"
	}
	return n + "6"
}

// sameListener reports whether a and b listen on the same socket.
func sameListener(a, b Service) bool {
	return a.Protocol == b.Protocol && a.ListenAddr == b.ListenAddr
}

// sameBalancing reports whether a and b schedule the same endpoints the
// same way.
func sameBalancing(a, b Service) bool {
	return a.schedulerName() == b.schedulerName() && slices.Equal(a.Endpoints, b.Endpoints)
}

// validate checks the fields of every service that can be checked without
// building a scheduler, and that keys and listening sockets are unique.
func validate(svcs []Service) error {
	var errs []error
	keys := make(map[string]bool, len(svcs))
	socks := make(map[string]string, len(svcs))
	for i, s := range svcs {
		if s.Key == "" {
			errs = append(errs, fmt.Errorf("service %d: empty key", i))
			continue
		}
		if keys[s.Key] {
			errs = append(errs, fmt.Errorf("service %q: listed twice", s.Key))
			continue
		}
		keys[s.Key] = true
		if s.Protocol != TCP && s.Protocol != UDP {
			errs = append(errs, fmt.Errorf("service %q: protocol %q is not %s or %s", s.Key, s.Protocol, TCP, UDP))
			continue
		}
		if !s.ListenAddr.IsValid() {
			errs = append(errs, fmt.Errorf("service %q: invalid listen address", s.Key))
			continue
		}
		if s.ListenAddr.Port() != 0 {
			sock := s.Protocol + " " + s.ListenAddr.String()
			if other, ok := socks[sock]; ok {
				errs = append(errs, fmt.Errorf("service %q: listens on %s like service %q", s.Key, sock, other))
				continue
			}
			socks[sock] = s.Key
		}
	}
	return errors.Join(errs...)
}
