package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// transportParams are the settings an http.Transport is built from. A
// Swap that changes any of them builds a new transport.
type transportParams struct {
	keepaliveConns    int           // upstream-keepalive-connections: idle conns kept per endpoint; 0 disables keep-alive
	keepaliveTimeout  time.Duration // upstream-keepalive-timeout: idle conns closed after this
	keepaliveRequests int           // upstream-keepalive-requests: requests per connection
	connectTimeout    time.Duration // proxy-connect-timeout
	sendTimeout       time.Duration // proxy-send-timeout: per write
	readTimeout       time.Duration // proxy-read-timeout: to the response header, then between reads
}

func transportParamsOf(c nginxconf.Config) transportParams {
	return transportParams{
		keepaliveConns:    c.UpstreamKeepaliveConnections,
		keepaliveTimeout:  c.UpstreamKeepaliveTimeout,
		keepaliveRequests: c.UpstreamKeepaliveRequests,
		connectTimeout:    c.ProxyConnectTimeout,
		sendTimeout:       c.ProxySendTimeout,
		readTimeout:       c.ProxyReadTimeout,
	}
}

// transport is the upstream connection pool of one set of params.
type transport struct {
	params transportParams
	rt     *http.Transport // for requests served by net/http (HTTP/2)
	pool   *upstreamPool   // for the hand-written HTTP/1.1 path
}

// newTransport builds a pool. Upstreams are plain HTTP/1.1 (as
// ingress-nginx's proxy_http_version 1.1): no proxy from the environment,
// no HTTP/2, no transparent compression.
//
// ingress-nginx's upstream-keepalive-connections counts idle connections
// per worker across all upstreams; Go's pool is per endpoint, so the value
// is used as the per-endpoint idle limit (MaxIdleConnsPerHost) and 0 turns
// keep-alive off.
func newTransport(params transportParams) *transport {
	d := &net.Dialer{Timeout: params.connectTimeout, KeepAlive: 30 * time.Second}
	idleTimeout := params.keepaliveTimeout
	if idleTimeout <= 0 {
		idleTimeout = 60 * time.Second
	}
	rt := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countedConn{Conn: c, sendTimeout: params.sendTimeout}, nil
		},
		MaxIdleConns:           0, // no global limit
		MaxIdleConnsPerHost:    params.keepaliveConns,
		DisableKeepAlives:      params.keepaliveConns == 0,
		IdleConnTimeout:        idleTimeout,
		ResponseHeaderTimeout:  params.readTimeout,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
		TLSNextProto:           nil,
		ExpectContinueTimeout:  0,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        32 << 10,
		ReadBufferSize:         32 << 10,
	}
	return &transport{params: params, rt: rt, pool: newUpstreamPool(params)}
}

// closeIdle closes the pool's idle connections.
func (t *transport) closeIdle() {
	t.rt.CloseIdleConnections()
	t.pool.closeIdle()
}

// retire closes the idle connections of a pool that new requests no
// longer use, now and again after requests that were still running have
// most likely returned theirs; any left over are closed by
// IdleConnTimeout.
func (t *transport) retire() {
	t.pool.retire()
	t.closeIdle()
	time.AfterFunc(time.Second, t.closeIdle)
	if t.params.readTimeout > time.Second {
		time.AfterFunc(t.params.readTimeout, t.closeIdle)
	}
}
