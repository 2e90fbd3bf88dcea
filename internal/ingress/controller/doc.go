// Package controller turns the cluster state in fjord's store into proxy
// Snapshots. It watches Ingresses, IngressClasses, Services,
// EndpointSlices, Secrets and the ingress-nginx ConfigMap (List, then
// Watch from the list's revision, List again after any watch error),
// keeps them in caches, and after every burst of changes builds a new
// Snapshot from all of them and hands it to a Sink (the proxy's Swap).
//
// Files: controller.go (Config, Run, the sync loop), watch.go and
// cache.go (list/watch into caches), build.go (the pure state-to-Snapshot
// function), classes.go (which Ingresses are ours), endpoints.go (ready
// endpoints of a Service port), certs.go (kubernetes.io/tls Secrets),
// configmap.go (last good configuration, notices logged once).
//
// A store outage never disturbs the proxy: caches keep their last
// contents and no Snapshot is built from a partial view. The first
// Snapshot is built only after every kind has been listed once.
package controller
