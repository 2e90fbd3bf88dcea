// Package proxy is fjord's L7 ingress data path: an http.Handler that routes
// each request through an immutable Snapshot (routing table, ready endpoints
// per Service port, TLS certificates, ingress-nginx configuration) to an
// upstream endpoint, and a Frontend that serves it on listeners.
//
// Configuration is never reloaded: Proxy.Swap replaces the Snapshot with one
// atomic pointer store. A request reads the Snapshot once when it starts and
// keeps it to the end, so in-flight requests, keep-alive client connections
// and upgraded connections (WebSockets) are unaffected by a Swap.
//
// Two request paths share the routing, retry, health, access log and
// metrics code. HTTP/1.x connections, plain and TLS, take a hand-written
// path (one goroutine per connection, heads parsed in place into reused
// buffers, a pooled upstream client without goroutines of its own, no
// allocation per keep-alive request). HTTP/2 connections (ALPN "h2") are
// handed to net/http, where Proxy.ServeHTTP and httputil.ReverseProxy
// serve them; Options.NetHTTPOnly sends every connection that way.
//
// What the package owns, file by file:
//
//   - snapshot.go: the plain-data desired state a controller hands in.
//   - proxy.go: Proxy, Swap, and what a Snapshot resolves to (upstream
//     names, balancer counters).
//   - frontend.go, frontend_fast.go: listeners, accept loops
//     (worker-processes) and server generations (keep-alive,
//     client-header-timeout); the TLS handshake, ALPN dispatch and
//     Shutdown of the hand-written path.
//   - head.go, hdrkind.go, request.go, response.go: reading and parsing
//     HTTP/1.x message heads in place.
//   - h1conn.go, h1serve.go, h1body.go, h1write.go, h1util.go: the
//     hand-written client side: the request loop, routing, redirects,
//     404/503, proxy-body-size, client-body-timeout, local answers.
//   - h1proxy.go, h1send.go, h1relay.go, h1tunnel.go: its upstream side:
//     the retry loop (keep-alive race, proxy-next-upstream,
//     upstream-keepalive-requests), writing the request, relaying the
//     response, upgraded connections.
//   - upconn.go, uppool.go: the upstream connection pool
//     (upstream-keepalive-connections and -timeout, proxy-*-timeout).
//   - rawio.go, logfile.go: socket and access-log writes as raw system
//     calls, which keep the runtime's sysmon thread asleep.
//   - logsink.go: access-log lines of overlapping requests written
//     together; a lone request's line at once.
//   - exchange.go: per-request state both paths fill in.
//   - handler.go, body.go, respwriter.go, connstate.go, bufpool.go,
//     upstream.go, transport.go, conn.go: the net/http path: ServeHTTP,
//     request bodies, its http.Transport and retry loop (transport.go also
//     holds the hand-written path's pool of the same settings).
//   - balancer.go, health.go: round robin over ready endpoints and passive
//     health checking (consecutive failures eject an endpoint for a backoff).
//   - tls.go, cert.go: SNI certificate selection and the default certificate.
//   - accesslog.go, metrics.go: log-format-upstream lines and Prometheus
//     metrics, with reused buffers and resolved metric handles.
package proxy
