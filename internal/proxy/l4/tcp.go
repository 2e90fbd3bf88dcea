package l4

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// tcpServer accepts the connections of one TCP service and proxies each to
// an endpoint.
type tcpServer struct {
	p   *Proxy
	ln  net.Listener
	bal *balancer
	log *slog.Logger
}

// serveTCP starts accepting on ln.
func (p *Proxy) serveTCP(ln net.Listener, bal *balancer, log *slog.Logger) *tcpServer {
	s := &tcpServer{p: p, ln: ln, bal: bal, log: log}
	p.wg.Go(s.acceptLoop)
	return s
}

func (s *tcpServer) addr() netip.AddrPort { return addrPortOf(s.ln.Addr()) }

// endpointsRemoved does nothing: an established TCP connection keeps its
// endpoint until one side closes it.
func (s *tcpServer) endpointsRemoved([]netip.AddrPort) {}

func (s *tcpServer) close() { s.ln.Close() }

// acceptLoop runs until the listener is closed.
func (s *tcpServer) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as
			// net/http does rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("l4: accept", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.p.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		s.p.wg.Go(func() { s.handle(c) })
	}
}

// handle proxies one client connection.
func (s *tcpServer) handle(client net.Conn) {
	backend, ep, err := connect(s.p.ctx, s.bal, s.p.opts.Dialer, s.p.opts.DialTimeout, "tcp", flowOf(client.RemoteAddr()))
	if err != nil {
		s.log.Debug("l4: no endpoint reachable; resetting client", "client", client.RemoteAddr(), "err", err)
		reset(client)
		return
	}
	defer s.bal.done(ep)
	splice(s.p.ctx, client, backend)
}
