// Package sched implements IPVS-style endpoint schedulers as pure,
// deterministic code: round robin (rr), smooth weighted round robin (wrr),
// least connections (lc, wlc), source hashing (sh), random (random, with the
// randomness injected) and Maglev consistent hashing (maglev).
//
// A Scheduler picks the backend for a new flow. None of the schedulers read
// the clock or a global random source, and none are safe for concurrent
// use: the caller serialises calls.
//
// As in IPVS, an endpoint with weight 0 is quiesced: it is never picked for
// a new flow. Negative weights are rejected.
package sched
