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
// What the package owns, file by file:
//
//   - snapshot.go: the plain-data desired state a controller hands in.
//   - proxy.go, handler.go: Proxy, Swap and the request path (routing,
//     redirects, 404/503, forwarded headers).
//   - body.go: proxy-body-size (413), client-body-timeout (408) and
//     buffering of request bodies up to 1 MiB so they can be resent.
//   - exchange.go, respwriter.go, connstate.go, bufpool.go: per-request and
//     per-connection state, status capture, copy buffers.
//   - upstream.go: the retry loop (proxy-next-upstream) across endpoints,
//     the keep-alive race, upstream-keepalive-requests, proxy-read-timeout
//     between reads of the response body.
//   - transport.go, conn.go: the upstream http.Transport and its counted
//     connections (upstream-keepalive-*, proxy-*-timeout).
//   - balancer.go, health.go: round robin over ready endpoints and passive
//     health checking (consecutive failures eject an endpoint for a backoff).
//   - tls.go, cert.go: SNI certificate selection and the default certificate.
//   - frontend.go: listeners, accept loops (worker-processes) and
//     http.Server generations (keep-alive, client-header-timeout).
//   - accesslog.go, metrics.go: log-format-upstream lines and Prometheus
//     metrics.
package proxy
