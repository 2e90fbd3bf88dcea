// Package healthcheck serves what kube-proxy serves besides the data plane, with
// kube-proxy's semantics so that the tools built for it (kubelet-style probes, cloud
// load balancers, Prometheus rules) work unchanged:
//
//   - /healthz and /livez (healthzBindAddress): the proxy is healthy unless a sync has
//     been failing, or none has been reported, for longer than twice syncPeriod;
//     /healthz also requires the node to be eligible. JSON bodies as kube-proxy's.
//   - One HTTP server per healthCheckNodePort (LoadBalancer Services with
//     externalTrafficPolicy Local): 200 while this node has ready local endpoints for
//     the Service and the proxy is healthy, 503 otherwise, so a load balancer skips
//     nodes without local endpoints.
//   - kube-proxy's metrics where fjord's meaning is the same
//     (kubeproxy_sync_proxy_rules_duration_seconds and friends).
//
// Deciding is pure: Tracker (health from sync reports and a clock passed in) and
// Services (what each health-check port should answer, from a servicemap.Map). Doing is
// ServiceServers, which diffs the listeners it holds against the desired set, and
// Health, which ties them to the service proxy's syncs (its Synced is called at the end
// of each one).
package healthcheck
