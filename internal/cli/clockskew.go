package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/latency"
	"github.com/fjord-net/fjord/internal/resolve"
)

// clockSkew measures node b's clock against node a's: a timestamp probe from a's
// namespace to b's agent responder (UDP 10264), best of three by round trip.
func clockSkew(_ context.Context, a, b resolve.Node) (offset, rtt time.Duration, err error) {
	var conn *net.UDPConn
	if err := inns.Do(a.Netns, func() error {
		var err error
		conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: a.IP.AsSlice()})
		return err
	}); err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	best := time.Duration(-1)
	for i := 0; i < 3; i++ {
		r, off, err := latency.Exchange(conn, netip.AddrPortFrom(b.IP, latency.DefaultPort), 500*time.Millisecond)
		if err != nil {
			continue
		}
		if best < 0 || r < best {
			best, offset = r, off
		}
	}
	if best < 0 {
		return 0, 0, fmt.Errorf("no answer from %v:%s", b.IP, responderPort)
	}
	return offset, best, nil
}
