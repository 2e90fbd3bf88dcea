package conformance

import (
	"strings"
	"testing"
	"time"
)

const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" disabled="3200" errors="0" failures="1" time="160">
  <testsuite name="Kubernetes e2e suite" package="/" tests="4" disabled="0" skipped="1" errors="0" failures="1" time="160">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1.5"></testcase>
    <testcase name="[ReportBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="0"></testcase>
    <testcase name="[It] [sig-network] Services should serve a basic endpoint from pods  [Conformance]" classname="Kubernetes e2e suite" status="passed" time="10.25"></testcase>
    <testcase name="[It] [sig-network] DNS should provide DNS for the cluster  [Conformance]" classname="Kubernetes e2e suite" status="failed" time="65.5">
      <failure message="Timed out after 60.000s.&#xA;more detail" type="failed">[FAILED] Timed out</failure>
    </testcase>
    <testcase name="[It] [sig-storage] something" classname="Kubernetes e2e suite" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
    <testcase name="[It] [sig-network] needs two zones" classname="Kubernetes e2e suite" status="skipped" time="0.1"><skipped message="skipped - Requires at least 2 zones"></skipped></testcase>
  </testsuite>
</testsuites>`

func TestParseJUnitAndMarkdown(t *testing.T) {
	specs, err := ParseJUnit(strings.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 4 {
		t.Fatalf("specs %+v", specs)
	}
	if specs[0].Status != Failed || specs[0].Failure != "Timed out after 60.000s." || specs[1].Status != Passed || specs[1].Duration != 10250*time.Millisecond || specs[3].Status != Skipped || specs[2].SkipReason != "Requires at least 2 zones" {
		t.Fatalf("specs %+v", specs)
	}
	r := Run{Section: "Conformance", Focus: `\[Conformance\]`, Specs: specs, Procs: 2, Kube: "v1.37.2", Commit: "abc", Machine: "m",
		Known: map[string]string{"DNS should provide": "needs X"}}
	md := r.Markdown()
	for _, want := range []string{"### Conformance: 1 of 2 passed", "| [sig-network] Services should serve a basic endpoint from pods  [Conformance] | pass | 10.2 s |",
		"**FAIL**: Timed out after 60.000s. — needs X", "| [sig-network] needs two zones | Requires at least 2 zones |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "sig-storage") {
		t.Error("specs that did not run are listed")
	}
}

func TestSplice(t *testing.T) {
	doc := "# Conformance\n\nintro\n"
	doc = Splice(doc, "a", "A1\n")
	doc = Splice(doc, "b", "B1\n")
	doc = Splice(doc, "a", "A2\n")
	want := "# Conformance\n\nintro\n\n<!-- begin a -->\nA2\n<!-- end a -->\n\n<!-- begin b -->\nB1\n<!-- end b -->\n"
	if doc != want {
		t.Fatalf("got\n%q\nwant\n%q", doc, want)
	}
}
