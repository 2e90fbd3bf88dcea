// Package conformance turns a run of the upstream Kubernetes e2e suite (its JUnit
// report) into docs/conformance.md: every spec that ran, passed or failed, its time,
// and, for failures with a known cause outside fjord, the cause. Parsing and
// rendering are pure; cmd/fjord-conformance runs the suite.
package conformance

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Status of one spec.
type Status string

const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Spec is one e2e spec of a run.
type Spec struct {
	Name     string
	Status   Status
	Duration time.Duration
	Failure  string // first line of the failure message
	// SkipReason is why the suite skipped a selected spec at run time (it needs
	// something the cluster lacks); "" for specs the focus did not select.
	SkipReason string
}

type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string  `xml:"name,attr"`
	Status  string  `xml:"status,attr"`
	Time    float64 `xml:"time,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failure *struct {
		Message string `xml:"message,attr"`
		Body    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
	} `xml:"error"`
}

// ParseJUnit reads a ginkgo JUnit report. The suite's setup and teardown nodes
// ([SynchronizedBeforeSuite] ...) are left out.
func ParseJUnit(r io.Reader) ([]Spec, error) {
	var s junitSuites
	if err := xml.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("junit report: %w", err)
	}
	var out []Spec
	for _, suite := range s.Suites {
		for _, c := range suite.Cases {
			if suiteNode(c.Name) {
				continue
			}
			sp := Spec{Name: strings.TrimPrefix(c.Name, "[It] "), Duration: time.Duration(c.Time * float64(time.Second))}
			switch {
			case c.Failure != nil:
				sp.Status, sp.Failure = Failed, firstLine(cmp.Or(c.Failure.Message, c.Failure.Body))
			case c.Error != nil:
				sp.Status, sp.Failure = Failed, firstLine(c.Error.Message)
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				sp.Status = Skipped
				if c.Skipped != nil {
					if r, ok := strings.CutPrefix(c.Skipped.Message, "skipped - "); ok {
						sp.SkipReason = firstLine(r)
					}
				}
			default:
				sp.Status = Passed
			}
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b Spec) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// suiteNode reports whether a test case is one of ginkgo's suite-level nodes
// ([SynchronizedBeforeSuite], [ReportAfterSuite], ...), not a spec.
func suiteNode(name string) bool {
	for _, p := range []string{"[SynchronizedBeforeSuite]", "[SynchronizedAfterSuite]", "[BeforeSuite]", "[AfterSuite]", "[ReportBeforeSuite]", "[ReportAfterSuite]"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Run is one run of the suite, for the report.
type Run struct {
	Section  string // the report section it fills ("Conformance", "sig-network")
	Focus    string
	Skip     string
	Started  time.Time
	Wall     time.Duration
	Machine  string // what it ran on
	Commit   string // fjord's version
	Kube     string // Kubernetes version of the suite and control plane
	Procs    int    // ginkgo processes
	Specs    []Spec
	Known    map[string]string // spec name pattern → cause, for failures not fjord's
	ExitNote string            // anything the runner wants said (a timeout, say)
}

// Counts returns how many specs passed and failed (skipped ones did not run).
func (r Run) Counts() (passed, failed int) {
	for _, s := range r.Specs {
		switch s.Status {
		case Passed:
			passed++
		case Failed:
			failed++
		}
	}
	return
}

// Markdown renders the run as one section of docs/conformance.md.
func (r Run) Markdown() string {
	var b strings.Builder
	passed, failed := r.Counts()
	fmt.Fprintf(&b, "### %s: %d of %d passed\n\n", r.Section, passed, passed+failed)
	fmt.Fprintf(&b, "- focus `%s`", r.Focus)
	if r.Skip != "" {
		fmt.Fprintf(&b, ", skip `%s`", r.Skip)
	}
	fmt.Fprintf(&b, "\n- ran %s for %s (wall clock, ginkgo with %d processes), e2e suite and control plane %s, fjord %s\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Wall.Round(time.Second), r.Procs, r.Kube, r.Commit)
	fmt.Fprintf(&b, "- machine: %s\n", r.Machine)
	if r.ExitNote != "" {
		fmt.Fprintf(&b, "- %s\n", r.ExitNote)
	}
	b.WriteString("\n| spec | result | time |\n|---|---|---:|\n")
	var skipped []Spec
	for _, s := range r.Specs {
		if s.Status == Skipped {
			if s.SkipReason != "" {
				skipped = append(skipped, s)
			}
			continue
		}
		res := "pass"
		if s.Status == Failed {
			res = "**FAIL**: " + escape(s.Failure)
			if cause := r.knownCause(s.Name); cause != "" {
				res += " — " + escape(cause)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f s |\n", escape(s.Name), res, s.Duration.Seconds())
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "\nSelected but skipped by the suite itself (%d): it decides at run time that the cluster lacks what they need.\n\n| spec | why |\n|---|---|\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintf(&b, "| %s | %s |\n", escape(s.Name), escape(s.SkipReason))
		}
	}
	return b.String()
}

func (r Run) knownCause(name string) string {
	keys := make([]string, 0, len(r.Known))
	for k := range r.Known {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if regexp.MustCompile(k).MatchString(name) {
			return r.Known[k]
		}
	}
	return ""
}

func escape(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// Splice puts section into doc between its markers (<!-- begin NAME --> and
// <!-- end NAME -->), appending the section when the markers are missing.
func Splice(doc, name, section string) string {
	begin, end := "<!-- begin "+name+" -->", "<!-- end "+name+" -->"
	block := begin + "\n" + section + end
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return strings.TrimRight(doc, "\n") + "\n\n" + block + "\n"
	}
	return doc[:i] + block + doc[j+len(end):]
}

// Header starts docs/conformance.md when it does not exist yet.
const Header = `# Conformance: the upstream Kubernetes e2e suite against fjord

fjord is the only CNI plugin and the only service proxy (no kube-proxy) of a lab with a
real control plane and real kubelets (` + "`fjord lab up --kubernetes --runtime containerd`" + `),
fjord installed from deploy/fjord.yaml (without its ingress DaemonSet, whose host ports 80
and 443 on every node would shadow the host-network servers the suite starts on those
ports). ` + "`make conformance`" + ` runs the suite and rewrites
the sections below; docs/testing.md says how long it takes.
`

// KnownCauses explains failures whose cause is outside fjord (what the machine or the
// lab cannot have), by spec name pattern.
var KnownCauses = map[string]string{}
