// Package servicemap turns Services and EndpointSlices into plain data: one
// ServicePort per (Service, port) with the endpoints that back it, ready for
// a data plane (nftproxy) to program.
//
// Build is pure and deterministic: the same objects give the same Map, in
// any input order. It never fails; objects or values it cannot use are
// skipped or defaulted and reported in Map.Problems, naming the object and
// the field.
//
// fjord reads two annotations on a Service:
//
//   - fjord.dev/scheduler: the endpoint scheduler for this Service, one of
//     rr, wrr, lc, wlc, sh, random, maglev. Absent or invalid means
//     Options.DefaultScheduler (an invalid value is reported).
//   - fjord.dev/weights: endpoint weights as "IP=weight" pairs separated by
//     commas, for example "10.244.1.5=3,10.244.2.7=1". Weights are integers
//     from 0 to 65535; endpoints not listed weigh 1. As in IPVS, weight 0
//     quiesces an endpoint: it gets no new flows. EndpointSlice hints are
//     for topology, so weights live on the Service.
//
// Endpoint selection follows kube-proxy: ServicePort.Endpoints lists every
// endpoint that is ready or serving; ClusterEndpoints and LocalEndpoints
// pick the ready ones, falling back to serving-and-terminating endpoints
// when none is ready.
package servicemap
