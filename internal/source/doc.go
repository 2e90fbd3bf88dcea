// Package source is where a fjord process gets its objects from. One Source per
// process holds one client-go shared informer per kind (and namespace or field
// selector), so Services and EndpointSlices are decoded and cached once however many
// components read them, and every consumer gets the field's standard machinery:
// list, watch, relist after a watch expires (410 Gone), periodic resync.
//
// Two backends feed the informers:
//   - Kubernetes: the API server, through a client-go clientset (fjord inside a real
//     cluster);
//   - Store: fjord's own etcd store (the embedded default and the lab), through a
//     ListerWatcher that turns etcd's list/watch into the API's shapes and reports a
//     compacted revision as 410 Gone so the reflector relists.
//
// Consumers never see which backend runs. Writes do not go through a Source: each
// writer (node registration, EndpointSlices, Ingress status, Pod status) has its own
// small interface with one implementation per backend.
package source
