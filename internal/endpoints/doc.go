// Package endpoints is fjord's EndpointSlice controller: it owns every EndpointSlice
// labelled endpointslice.kubernetes.io/managed-by=endpoints.fjord.dev and keeps them equal
// to what the Services, Pods and node Leases in the store say they should be. Slices
// without that label (user-managed, or for Services without a selector) are never touched.
//
// The package is split the usual way:
//   - Desired (desired.go, ports.go) is the pure core: objects in, slices out.
//   - plan (plan.go) diffs desired slices against the stored ones: objects in, writes out.
//   - Controller (controller.go, election.go, informer.go, cache.go, sync.go) feeds the
//     core from List+Watch and writes the plan, on exactly one node at a time: every agent
//     runs a Controller, and an etcd election picks the one that works.
package endpoints
