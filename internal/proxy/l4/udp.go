package l4

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// maxDatagram is the largest UDP payload relayed.
const maxDatagram = 64 << 10

// udpServer relays the datagrams of one UDP service. Each client address
// has a session: a connected socket to the endpoint picked for it. At most
// Options.UDPMaxSessions sessions exist at once; a new client beyond that
// ends the session whose client was heard from longest ago.
//
// Lock order: mu before the balancer's lock.
type udpServer struct {
	p   *Proxy
	pc  net.PacketConn
	bal *balancer
	log *slog.Logger

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	lru      list.List // of *udpSession, the client heard from most recently in front
	closed   bool
}

// udpSession is one client's association with an endpoint. It ends in
// udpServer.drop, which releases the endpoint and closes conn, and so ends
// the relay goroutine.
type udpSession struct {
	client netip.AddrPort
	ep     sched.Endpoint
	conn   net.Conn
	last   atomic.Int64  // UnixNano of the last datagram in either direction
	elem   *list.Element // in udpServer.lru; nil once the session is dropped
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

// serveUDP starts reading from pc.
func (p *Proxy) serveUDP(pc net.PacketConn, bal *balancer, log *slog.Logger) *udpServer {
	s := &udpServer{p: p, pc: pc, bal: bal, log: log, sessions: make(map[netip.AddrPort]*udpSession)}
	p.wg.Go(s.readLoop)
	return s
}

func (s *udpServer) addr() netip.AddrPort { return addrPortOf(s.pc.LocalAddr()) }

// drop ends sess: it forgets it, releases its endpoint and closes its
// socket, which ends its relay. Dropping it again does nothing. Call with
// mu held.
func (s *udpServer) drop(sess *udpSession) {
	if sess.elem == nil {
		return
	}
	s.lru.Remove(sess.elem)
	sess.elem = nil
	delete(s.sessions, sess.client)
	sess.conn.Close()
	s.bal.done(sess.ep)
}

// endpointsRemoved ends the sessions to the given endpoints at once, so
// their clients' next datagrams are scheduled to a remaining endpoint.
func (s *udpServer) endpointsRemoved(addrs []netip.AddrPort) {
	gone := make(map[netip.AddrPort]bool, len(addrs))
	for _, a := range addrs {
		gone[a] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		if gone[sess.ep.Addr] {
			s.drop(sess)
		}
	}
}

// close stops listening and ends every session.
func (s *udpServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.pc.Close()
	for _, sess := range s.sessions {
		s.drop(sess)
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
	if sess != nil {
		s.lru.MoveToFront(sess.elem)
	}
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
	for len(s.sessions) >= s.p.opts.UDPMaxSessions {
		s.drop(s.lru.Back().Value.(*udpSession))
		s.bal.evicted()
	}
	sess.elem = s.lru.PushFront(sess)
	s.sessions[client] = sess
	s.p.wg.Go(func() { s.relay(sess) })
	return sess
}

// relay sends the endpoint's replies to the client until the session is
// idle for UDPIdleTimeout, its socket fails or is closed; then it ends the
// session. It waits for a reply without a buffer and borrows one from the
// proxy's pool only to move a datagram, so an idle session holds no
// buffer.
func (s *udpServer) relay(sess *udpSession) {
	idle := s.p.opts.UDPIdleTimeout
	to := net.UDPAddrFromAddrPort(sess.client)
	for {
		sess.conn.SetReadDeadline(time.Unix(0, sess.last.Load()).Add(idle))
		n, bp, err := s.readReply(sess.conn)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, sess.last.Load())) < idle {
				continue // the client spoke since the deadline was set
			}
			break
		}
		sess.touch()
		if _, err := s.pc.WriteTo((*bp)[:n], to); err != nil {
			s.log.Debug("l4: udp write to client", "client", sess.client, "err", err)
		}
		s.p.bufs.Put(bp)
	}
	s.mu.Lock()
	s.drop(sess)
	s.mu.Unlock()
}

// readReply waits until c has a datagram, then reads it into a buffer from
// the pool, which the caller puts back. On error no buffer is held.
func (s *udpServer) readReply(c net.Conn) (int, *[]byte, error) {
	if err := waitReadable(c); err != nil {
		return 0, nil, err
	}
	bp := s.p.bufs.Get().(*[]byte)
	n, err := c.Read(*bp)
	if err != nil {
		s.p.bufs.Put(bp)
		return 0, nil, err
	}
	return n, bp, nil
}

// waitReadable blocks until a datagram or an error is pending on c,
// honouring its read deadline. A pending socket error (an ICMP port
// unreachable from the endpoint) is returned: the kernel reports it once,
// to this peek. Connections that are not sockets (test doubles) return at
// once and their Read blocks instead.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var sockErr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, e := unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		sockErr = e
		return true
	})
	if err != nil {
		return err
	}
	return sockErr
}
