package proxy

import (
	"context"
	"sync/atomic"
)

// connState is per client connection state, put into every request's
// context by the Frontend's http.Server.
type connState struct {
	requests atomic.Int64
}

type connStateKey struct{}

func withConnState(ctx context.Context) context.Context {
	return context.WithValue(ctx, connStateKey{}, &connState{})
}

func connStateFrom(ctx context.Context) *connState {
	cs, _ := ctx.Value(connStateKey{}).(*connState)
	return cs
}

// serve counts a request and reports whether it is the last one allowed
// on the connection (keep-alive-requests; 0 = unlimited), in which case
// the response carries "Connection: close" and net/http closes the
// connection after it.
func (c *connState) serve(max int) (last bool) {
	n := c.requests.Add(1)
	return max > 0 && n >= int64(max)
}
