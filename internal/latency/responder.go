package latency

import (
	"context"
	"errors"
	"net"
	"time"
)

// Responder answers probes on one UDP socket. Replies are exactly as long as the probe
// they answer and go only to its sender, so the responder cannot amplify anything.
type Responder struct {
	conn *net.UDPConn
	now  func() time.Time
}

// Listen opens a responder on addr (the node's address and DefaultPort: never wider).
func Listen(addr string) (*Responder, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	return &Responder{conn: c, now: time.Now}, nil
}

// Addr is where it listens.
func (r *Responder) Addr() net.Addr { return r.conn.LocalAddr() }

// Serve answers until ctx ends.
func (r *Responder) Serve(ctx context.Context) error {
	go func() { <-ctx.Done(); r.conn.Close() }()
	buf := make([]byte, 512)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		t2 := r.now().UnixNano()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		p, err := Unmarshal(buf[:n])
		if err != nil || p.Reply {
			continue
		}
		p.Reply, p.T2 = true, t2
		p.T3 = r.now().UnixNano()
		_, _ = r.conn.WriteToUDPAddrPort(p.Marshal(), from)
	}
}

// Close stops the responder.
func (r *Responder) Close() error { return r.conn.Close() }
