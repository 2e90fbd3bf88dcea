// Package probe sends ICMP echo requests from inside a network namespace and says what
// became of each one: answered (with its round-trip time), refused by the sender's own
// interface MTU, answered with "fragmentation needed" (a router's path MTU), reported
// unreachable, or lost without a word. Path-MTU discovery (fjord mtu), the latency
// matrix (fjord latency) and doctor's reachability checks are built on it.
//
// A Pinger's socket is created on a thread inside the namespace and keeps belonging to
// it, so it can then be used from any goroutine. Don't-fragment probes use
// IP_PMTUDISC_PROBE: DF is set, but the kernel's cached path MTU is ignored, so every
// size really goes on the wire and the answer is the network's, not the cache's.
package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/inns"
)

// Outcome is what became of one probe.
type Outcome int

// The outcomes, from best to worst.
const (
	Reply       Outcome = iota // an echo reply came back
	LocalTooBig                // the sender's own route MTU is smaller: refused at send
	FragNeeded                 // a hop answered "fragmentation needed" / "packet too big"
	Unreachable                // a hop answered destination unreachable (another code)
	Lost                       // nothing came back before the timeout
)

func (o Outcome) String() string {
	return [...]string{"reply", "too big for the local interface", "fragmentation needed", "unreachable", "lost"}[o]
}

// Result is one probe's outcome.
type Result struct {
	Outcome Outcome
	RTT     time.Duration // for Reply
	MTU     int           // for LocalTooBig and FragNeeded: the MTU the kernel or hop reported
	From    netip.Addr    // who answered (the target, or the hop that complained)
	Code    int           // ICMP code for Unreachable
}

// Pinger sends echo requests to one address family from one namespace.
type Pinger struct {
	conn   *icmp.PacketConn
	v6     bool
	id     int
	nsPath string

	mu  sync.Mutex
	seq int
}

var idMu sync.Mutex
var nextID = os.Getpid() & 0x7fff

func newID() int {
	idMu.Lock()
	defer idMu.Unlock()
	nextID = (nextID + 1) & 0xffff
	return nextID
}

// Open opens a pinger for IPv4 (v6 false) or IPv6 inside the namespace at nsPath
// ("" = the current one). src, if valid, is the source address.
func Open(nsPath string, v6 bool, src netip.Addr) (*Pinger, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if v6 {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	if src.IsValid() {
		laddr = src.String()
	}
	var conn *icmp.PacketConn
	err := inns.Do(nsPath, func() error {
		var err error
		conn, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ICMP socket in %s: %w", nsName(nsPath), err)
	}
	return &Pinger{conn: conn, v6: v6, id: newID(), nsPath: nsPath}, nil
}

func nsName(p string) string {
	if p == "" {
		return "this namespace"
	}
	return p
}

// ID is the echo identifier this pinger's requests carry.
func (p *Pinger) ID() uint16 { return uint16(p.id) }

// Close releases the socket.
func (p *Pinger) Close() error { return p.conn.Close() }

// Ping sends one echo request of size bytes (the whole IP packet, headers included)
// to dst and waits up to timeout. df sets don't-fragment (see the package comment).
func (p *Pinger) Ping(dst netip.Addr, size int, df bool, timeout time.Duration) (Result, error) {
	hdr := 28
	if p.v6 {
		hdr = 48
	}
	if size < hdr || size > 65535 {
		return Result{}, fmt.Errorf("probe size %d is outside %d..65535", size, hdr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq = (p.seq + 1) & 0xffff
	seq := p.seq
	if err := p.setDF(df); err != nil {
		return Result{}, err
	}
	typ := icmp.Type(ipv4.ICMPTypeEcho)
	if p.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: make([]byte, size-hdr)}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if _, err := p.conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		if errors.Is(err, syscall.EMSGSIZE) {
			return Result{Outcome: LocalTooBig, MTU: p.InterfaceMTU(dst)}, nil
		}
		if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
			return Result{Outcome: Unreachable}, nil
		}
		return Result{}, fmt.Errorf("send to %v: %w", dst, err)
	}
	deadline := start.Add(timeout)
	buf := make([]byte, 65536)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return Result{Outcome: Lost}, nil
			}
			return Result{}, err
		}
		r, ok := Classify(buf[:n], p.v6, p.id, seq)
		if !ok {
			continue
		}
		if ip, ok := from.(*net.IPAddr); ok {
			r.From, _ = netip.AddrFromSlice(ip.IP)
			r.From = r.From.Unmap()
		}
		if r.Outcome == Reply {
			if r.From != dst {
				continue
			}
			r.RTT = time.Since(start)
		}
		return r, nil
	}
}

func (p *Pinger) setDF(df bool) error {
	level, opt, val := unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT
	if df {
		val = unix.IP_PMTUDISC_PROBE
	}
	if p.v6 {
		level, opt, val = unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT
		if df {
			val = unix.IPV6_PMTUDISC_PROBE
		}
	}
	rc, err := rawConn(p.conn)
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, val) }); err != nil {
		return err
	}
	return serr
}

// InterfaceMTU is the MTU of the interface the kernel sends dst by (0 if unknown):
// the limit IP_PMTUDISC_PROBE enforces at send time (a cached path MTU is not).
func (p *Pinger) InterfaceMTU(dst netip.Addr) int {
	mtu := 0
	_ = inns.Do(p.nsPath, func() error {
		routes, err := netlink.RouteGet(dst.AsSlice())
		if err != nil || len(routes) == 0 {
			return err
		}
		if l, err := netlink.LinkByIndex(routes[0].LinkIndex); err == nil {
			mtu = l.Attrs().MTU
		}
		return nil
	})
	return mtu
}

func rawConn(c *icmp.PacketConn) (syscall.RawConn, error) {
	if c4 := c.IPv4PacketConn(); c4 != nil {
		if sc, ok := any(c4.PacketConn).(syscall.Conn); ok {
			return sc.SyscallConn()
		}
	}
	if c6 := c.IPv6PacketConn(); c6 != nil {
		if sc, ok := any(c6.PacketConn).(syscall.Conn); ok {
			return sc.SyscallConn()
		}
	}
	return nil, errors.New("ICMP socket has no file descriptor")
}
