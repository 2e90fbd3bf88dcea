package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestUpstreamConformance runs the 47 upstream [sig-network] [Conformance] specs
// (`make conformance` without writing docs/conformance.md) against a lab with real
// kubelets where fjord is the only CNI and the only service proxy. Every spec must
// pass.
func TestUpstreamConformance(t *testing.T) {
	requireRoot(t)
	cmd := exec.Command("go", "run", "../../cmd/fjord-conformance", "-fjord", fjordBin, "-report", "",
		"-lab", "e2ecnf", "-subnet", "198.18.167.0/24")
	out, err := cmd.CombinedOutput()
	tail := string(out)
	if i := strings.LastIndex(tail, "Ran "); i > 0 {
		tail = tail[i:]
	}
	if err != nil {
		t.Fatalf("the conformance specs did not all pass: %v\n%s", err, tail)
	}
	if !strings.Contains(string(out), "Conformance: 47 passed, 0 failed") {
		t.Fatalf("expected all 47 specs to pass:\n%s", tail)
	}
	t.Log(tail)
}
