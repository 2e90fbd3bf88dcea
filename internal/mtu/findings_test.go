package mtu

import (
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/probe"
)

func TestFindingsNameTheBlackHoleAndTheFix(t *testing.T) {
	nodes := []NodeMTU{
		{Node: "n1", Underlay: 1500, Pod: 1450, Device: 1450, Overhead: 50},
		{Node: "n2", Underlay: 1500, Pod: 1450, Device: 1450, Overhead: 50},
		{Node: "n3", Underlay: 1400, Pod: 1450, Device: 1450, Overhead: 50},
	}
	ok := func(l Layer, from, to string, mtu int) PairResult {
		return PairResult{Pair: Pair{Layer: l, From: from, To: to, Expected: mtu}, PathResult: PathResult{Reachable: true, Works: mtu}}
	}
	hole := func(l Layer, from, to string, expected, works int) PairResult {
		return PairResult{Pair: Pair{Layer: l, From: from, To: to, Expected: expected},
			PathResult: PathResult{Reachable: true, Works: works, FailedAt: works + 1, Failure: probe.Lost}}
	}
	results := []PairResult{
		ok(Underlay, "n1", "n2", 1500), hole(Underlay, "n1", "n3", 1500, 1400), ok(Underlay, "n3", "n1", 1400),
		ok(Overlay, "n1", "n2", 1450), hole(Overlay, "n1", "n3", 1450, 1350), hole(Overlay, "n3", "n1", 1450, 1350),
		hole(Overlay, "n2", "n3", 1450, 1350),
	}
	got := Findings(results, nodes)
	text := ""
	for _, f := range got {
		text += f.Severity + " " + f.What + " | " + f.Fix + "\n"
	}
	for _, want := range []string{
		"underlay MTUs differ between nodes (n1,n2: 1500; n3: 1400)",
		"underlay n1→n3: packets over 1400 bytes vanish without any ICMP",
		"raise n3's underlay MTU to 1500",
		"overlay n1→n3: packets over 1350 bytes vanish",
		"pods talking to n3 need MTU ≤ 1350",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "n1→n2") {
		t.Errorf("a healthy pair was reported:\n%s", text)
	}

	// A healthy cluster has nothing to say.
	if f := Findings([]PairResult{ok(Underlay, "n1", "n2", 1500), ok(Overlay, "n1", "n2", 1450)}, nodes[:2]); len(f) != 0 {
		t.Errorf("healthy: %+v", f)
	}
	// A partitioned node is a path that is down, not an MTU problem.
	down := PairResult{Pair: Pair{Layer: Underlay, From: "n1", To: "n3", Expected: 1500}, PathResult: PathResult{FailedAt: 576, Failure: probe.Lost}}
	f := Findings([]PairResult{down}, nodes[:2])
	if len(f) != 1 || !strings.Contains(f[0].What, "the path is down") {
		t.Errorf("partition: %+v", f)
	}
	// A router that says so: PMTUD works; a warning, not a failure.
	told := PairResult{Pair: Pair{Layer: Underlay, From: "n1", To: "n2", Expected: 1500}, PathResult: PathResult{Reachable: true, Works: 1400, FailedAt: 1401, Failure: probe.FragNeeded, ReportedMTU: 1400}}
	f = Findings([]PairResult{told}, nodes[:2])
	if len(f) != 1 || f[0].Severity != "WARN" {
		t.Errorf("told: %+v", f)
	}
}
