package l4

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// maxDatagram is the largest UDP payload relayed.
const maxDatagram = 64 << 10

// udpServer relays the datagrams of one UDP service. Each client address
// has a session: a connected socket to the endpoint picked for it.
//
// Lock order: mu before the balancer's lock.
type udpServer struct {
	p   *Proxy
	pc  net.PacketConn
	bal *balancer
	log *slog.Logger

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	closed   bool
}

// udpSession is one client's association with an endpoint. Its relay
// goroutine owns the end of it: closing conn makes relay release the
// endpoint.
type udpSession struct {
	client netip.AddrPort
	ep     sched.Endpoint
	conn   net.Conn
	last   atomic.Int64 // UnixNano of the last datagram in either direction
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

// serveUDP starts reading from pc.
func (p *Proxy) serveUDP(pc net.PacketConn, bal *balancer, log *slog.Logger) *udpServer {
	s := &udpServer{p: p, pc: pc, bal: bal, log: log, sessions: make(map[netip.AddrPort]*udpSession)}
	p.wg.Go(s.readLoop)
	return s
}

func (s *udpServer) addr() netip.AddrPort { return addrPortOf(s.pc.LocalAddr()) }

// endpointsRemoved ends the sessions to the given endpoints at once, so
// their clients' next datagrams are scheduled to a remaining endpoint.
func (s *udpServer) endpointsRemoved(addrs []netip.AddrPort) {
	gone := make(map[netip.AddrPort]bool, len(addrs))
	for _, a := range addrs {
		gone[a] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, sess := range s.sessions {
		if gone[sess.ep.Addr] {
			delete(s.sessions, c)
			sess.conn.Close()
		}
	}
}

// close stops listening and ends every session.
func (s *udpServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.pc.Close()
	for c, sess := range s.sessions {
		delete(s.sessions, c)
		sess.conn.Close()
	}
}

// readLoop forwards client datagrams until the socket is closed.
func (s *udpServer) readLoop() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.p.ctx.Err() != nil {
				return
			}
			s.log.Debug("l4: udp read", "err", err)
			continue
		}
		sess := s.session(addrPortOf(from))
		if sess == nil {
			continue
		}
		sess.touch()
		if _, err := sess.conn.Write(buf[:n]); err != nil {
			s.log.Debug("l4: udp write to endpoint", "endpoint", sess.ep.Addr, "err", err)
		}
	}
}

// session returns the session of client, creating it if needed; nil when
// no endpoint can be reached. Only readLoop calls it, so two sessions are
// never created for one client.
func (s *udpServer) session(client netip.AddrPort) *udpSession {
	s.mu.Lock()
	sess := s.sessions[client]
	s.mu.Unlock()
	if sess != nil {
		return sess
	}
	f := sched.Flow{SrcIP: client.Addr().Unmap(), SrcPort: client.Port()}
	conn, ep, err := connect(s.p.ctx, s.bal, s.p.opts.Dialer, s.p.opts.DialTimeout, "udp", f)
	if err != nil {
		s.log.Debug("l4: no endpoint reachable; dropping datagram", "client", client, "err", err)
		return nil
	}
	sess = &udpSession{client: client, ep: ep, conn: conn}
	sess.touch()
	s.mu.Lock()
	defer s.mu.Unlock()
	// The endpoint may have been removed while we dialled it, after
	// endpointsRemoved ran; checking under mu closes that window.
	if s.closed || !s.bal.isConfigured(ep.Addr) {
		conn.Close()
		s.bal.done(ep)
		return nil
	}
	s.sessions[client] = sess
	s.p.wg.Go(func() { s.relay(sess) })
	return sess
}

// relay sends the endpoint's replies to the client until the session is
// idle for UDPIdleTimeout, its socket fails or is closed; then it ends the
// session.
func (s *udpServer) relay(sess *udpSession) {
	idle := s.p.opts.UDPIdleTimeout
	to := net.UDPAddrFromAddrPort(sess.client)
	buf := make([]byte, maxDatagram)
	for {
		sess.conn.SetReadDeadline(time.Unix(0, sess.last.Load()).Add(idle))
		n, err := sess.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, sess.last.Load())) < idle {
				continue // the client spoke since the deadline was set
			}
			break
		}
		sess.touch()
		if _, err := s.pc.WriteTo(buf[:n], to); err != nil {
			s.log.Debug("l4: udp write to client", "client", sess.client, "err", err)
		}
	}
	s.mu.Lock()
	if s.sessions[sess.client] == sess {
		delete(s.sessions, sess.client)
	}
	s.mu.Unlock()
	sess.conn.Close()
	s.bal.done(sess.ep)
}
