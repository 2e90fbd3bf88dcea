package l4

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// errNoEndpoint means the scheduler had no endpoint to offer.
var errNoEndpoint = errors.New("no endpoint")

// maxRepicks bounds the picks connect spends skipping endpoints it has
// already tried, on top of one pick per endpoint.
const maxRepicks = 1024

// connect picks an endpoint for f and dials it. When a dial fails it asks
// the scheduler again, dialling each endpoint at most once. A pick that
// returns an endpoint already tried is held until connect returns: for lc
// and wlc the held count pushes the next pick to the next best endpoint.
//
// On success the pick of ep stays counted and the caller releases it with
// bal.done; every other pick is released before connect returns.
func connect(ctx context.Context, bal *balancer, d Dialer, timeout time.Duration, network string, f sched.Flow) (net.Conn, sched.Endpoint, error) {
	tried := make(map[netip.AddrPort]bool)
	var held []sched.Endpoint
	defer func() {
		for _, ep := range held {
			bal.done(ep)
		}
	}()
	var errs []error
	for picks := 0; ctx.Err() == nil; picks++ {
		n := bal.eligibleCount()
		if len(tried) >= n || picks >= n+maxRepicks {
			break
		}
		ep, ok := bal.pick(f)
		if !ok {
			break
		}
		if tried[ep.Addr] {
			held = append(held, ep)
			continue
		}
		tried[ep.Addr] = true
		dctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := d.DialContext(dctx, network, ep.Addr.String())
		cancel()
		if err == nil {
			bal.connected(ep)
			return c, ep, nil
		}
		bal.dialFailed(ep)
		held = append(held, ep)
		errs = append(errs, err)
	}
	bal.unreachable()
	if len(errs) == 0 {
		return nil, sched.Endpoint{}, errNoEndpoint
	}
	return nil, sched.Endpoint{}, errors.Join(errs...)
}

// flowOf returns the flow of a connection from a.
func flowOf(a net.Addr) sched.Flow {
	ap := addrPortOf(a)
	return sched.Flow{SrcIP: ap.Addr().Unmap(), SrcPort: ap.Port()}
}

// addrPortOf converts a TCP or UDP address; other kinds yield the zero value.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
