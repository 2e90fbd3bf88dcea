package l4

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultDialTimeout    = 2 * time.Second
	DefaultUDPIdleTimeout = 30 * time.Second
	// DefaultUDPMaxSessions bounds the UDP sessions of one service. A
	// session costs a goroutine and a connected socket (no buffer while
	// idle), so 4096 sessions stay within a few tens of MiB.
	DefaultUDPMaxSessions = 4096
)

// Dialer opens the proxy's side of a connection to an endpoint. network is
// "tcp" or "udp"; address is an endpoint's netip.AddrPort in string form.
// *net.Dialer implements it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// ListenConfig opens the sockets the proxy listens on. network is tcp4,
// tcp6, udp4 or udp6. *net.ListenConfig implements it.
type ListenConfig interface {
	Listen(ctx context.Context, network, address string) (net.Listener, error)
	ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error)
}

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// DialTimeout bounds each attempt to connect to an endpoint.
	// 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP session that has seen no datagram in
	// either direction for this long. 0 means DefaultUDPIdleTimeout.
	UDPIdleTimeout time.Duration
	// UDPMaxSessions bounds the UDP sessions (client addresses) of one
	// service. A datagram from a new client beyond it ends the session
	// whose client was heard from longest ago (its next datagram is
	// scheduled afresh). 0 means DefaultUDPMaxSessions.
	UDPMaxSessions int
	// Logger receives connection-level failures at debug level and
	// listener failures at warn level. nil discards.
	Logger *slog.Logger
	// Dialer connects to endpoints. nil means a *net.Dialer.
	Dialer Dialer
	// Listen opens listening sockets. nil means a *net.ListenConfig.
	Listen ListenConfig
	// NewRand returns a fresh random source for each "random" scheduler
	// the proxy builds (schedulers are not shared between goroutines, so
	// neither are their sources). nil means PCG seeded from math/rand/v2.
	NewRand func() rand.Source
	// MaglevTableSize is passed to sched for the "maglev" scheduler;
	// 0 means sched's default.
	MaglevTableSize int
}

// withDefaults returns o with its zero fields filled in.
func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.UDPIdleTimeout <= 0 {
		o.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if o.UDPMaxSessions <= 0 {
		o.UDPMaxSessions = DefaultUDPMaxSessions
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	if o.Listen == nil {
		o.Listen = &net.ListenConfig{}
	}
	if o.NewRand == nil {
		o.NewRand = func() rand.Source { return rand.NewPCG(rand.Uint64(), rand.Uint64()) }
	}
	return o
}
