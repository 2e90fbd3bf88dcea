package mtu

import (
	"testing"

	"github.com/fjord-net/fjord/internal/probe"
)

// network is a scripted path: sizes up to pass are answered; bigger ones are refused
// locally above local, answered with fragmentation-needed (mtu) when tell, else lost.
type network struct {
	pass, local int
	tell        bool
	down        bool
	lossEvery   int // lose every n-th probe (0 = never)
	sent        int
}

func (n *network) probe(size int) (probe.Result, error) {
	n.sent++
	switch {
	case n.down:
		return probe.Result{Outcome: probe.Lost}, nil
	case n.lossEvery > 0 && n.sent%n.lossEvery == 0:
		return probe.Result{Outcome: probe.Lost}, nil
	case n.local > 0 && size > n.local:
		return probe.Result{Outcome: probe.LocalTooBig, MTU: n.local}, nil
	case size <= n.pass:
		return probe.Result{Outcome: probe.Reply}, nil
	case n.tell:
		return probe.Result{Outcome: probe.FragNeeded, MTU: n.pass}, nil
	}
	return probe.Result{Outcome: probe.Lost}, nil
}

func TestDiscover(t *testing.T) {
	s := Search{Lo: 576, Hi: 1500, Tries: 2}
	for _, tc := range []struct {
		name string
		net  network
		want PathResult
	}{
		{"clean path", network{pass: 1500}, PathResult{Reachable: true, Works: 1500}},
		{"black hole at 1400", network{pass: 1400}, PathResult{Reachable: true, Works: 1400, FailedAt: 1401, Failure: probe.Lost}},
		{"router says 1350", network{pass: 1350, tell: true}, PathResult{Reachable: true, Works: 1350, FailedAt: 1351, Failure: probe.FragNeeded, ReportedMTU: 1350}},
		{"unreachable", network{down: true}, PathResult{FailedAt: 576, Failure: probe.Lost}},
		{"odd MTU 1237", network{pass: 1237}, PathResult{Reachable: true, Works: 1237, FailedAt: 1238, Failure: probe.Lost}},
		{"one lost probe in three is not a black hole", network{pass: 1500, lossEvery: 3}, PathResult{Reachable: true, Works: 1500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.net
			got, err := Discover(n.probe, s)
			if err != nil {
				t.Fatal(err)
			}
			got.Probes = 0
			if got.ReportedMTU == 0 {
				tc.want.ReportedMTU = 0
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// The sender's own interface is smaller than Hi: the kernel refuses, says why.
	n := network{pass: 1500, local: 1400}
	got, _ := Discover(n.probe, s)
	if got.Works != 1400 || got.Failure != probe.LocalTooBig || got.ReportedMTU != 1400 || got.BlackHole() {
		t.Fatalf("local MTU: %+v", got)
	}
	// A hint makes the search short.
	n = network{pass: 1350, tell: true}
	got, _ = Discover(n.probe, s)
	if got.Probes > 4 {
		t.Fatalf("with a reported MTU the search took %d probes, want at most 4", got.Probes)
	}
	if _, err := Discover(n.probe, Search{Lo: 1500, Hi: 576}); err == nil {
		t.Fatal("inverted bounds must be refused")
	}
}
