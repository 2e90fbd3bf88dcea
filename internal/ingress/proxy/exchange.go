package proxy

import (
	"context"
	"net/netip"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// exchange is the state of one proxied request, shared between the
// handler, the ReverseProxy hooks and the upstream round tripper through
// the request context. All of them run on the request's goroutine, except
// where noted on a field.
type exchange struct {
	act      *active
	cfg      *nginxconf.Config
	key      UpstreamKey
	eps      []netip.AddrPort
	clientIP string
	scheme   string // http or https
	port     string // the port the request arrived on
	reqID    string
	// normPath is the normalised path sent upstream on the net/http path
	// when normalising changed the path's structure ("" = the client's).
	normPath string
	attempts []attempt // one per upstream attempt, for $upstream_* variables
}

// attempt is one try of an upstream.
type attempt struct {
	addr   string
	status int           // upstream status; 502 or 504 when there was none
	start  time.Time     // when the attempt started
	dur    time.Duration // to the end of the response body (or the error)
	length int64         // response body bytes read
}

type exchangeKey struct{}

func withExchange(ctx context.Context, x *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}
