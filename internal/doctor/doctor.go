// Package doctor runs a checklist on every node and on the cluster's shared parts and
// says, line by line, PASS, WARN or FAIL with the evidence and the fix: the kernel
// features and sysctls fjord relies on, MTU consistency, foreign firewall rules, whether
// the agent's kernel state and the service proxy's table match the store, stale
// conntrack entries, reachability of the other nodes, etcd's disk latency and health,
// and CPU contention (steal, softirq, busy processes in a node).
//
// Gathering (reading the kernel in each node's namespace, /proc, etcd's /metrics) is
// kept apart from judging: the judge functions take plain facts and are table-tested.
package doctor

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Status is a check's verdict.
type Status string

// The verdicts.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Check is one line of the checklist.
type Check struct {
	Scope    string `json:"scope"` // a node name, "cluster" or "etcd"
	Area     string `json:"area"`  // kernel, sysctl, mtu, firewall, agent, proxy, conntrack, peers, cpu, ...
	Status   Status `json:"status"`
	Evidence string `json:"evidence"`
	Fix      string `json:"fix,omitempty"`
}

// Report is every check.
type Report struct {
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Count returns how many checks have status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Print writes the checklist grouped by scope (nodes first, then cluster and etcd).
func (r Report) Print(w io.Writer) {
	var scopes []string
	by := map[string][]Check{}
	for _, c := range r.Checks {
		if _, ok := by[c.Scope]; !ok {
			scopes = append(scopes, c.Scope)
		}
		by[c.Scope] = append(by[c.Scope], c)
	}
	rank := func(s string) int {
		switch s {
		case "cluster":
			return 1
		case "etcd":
			return 2
		}
		return 0
	}
	sort.SliceStable(scopes, func(i, j int) bool {
		if rank(scopes[i]) != rank(scopes[j]) {
			return rank(scopes[i]) < rank(scopes[j])
		}
		return scopes[i] < scopes[j]
	})
	for i, s := range scopes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "== %s\n", s)
		for _, c := range by[s] {
			fmt.Fprintf(w, "%-4s  %-9s %s\n", c.Status, c.Area, c.Evidence)
			if c.Fix != "" {
				fmt.Fprintf(w, "%-4s  %-9s fix: %s\n", "", "", c.Fix)
			}
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed\n", r.Count(Pass), r.Count(Warn), r.Count(Fail))
}

// checks collects checks for one scope.
type checks struct {
	scope string
	out   []Check
}

func (c *checks) add(area string, st Status, evidence, fix string) {
	c.out = append(c.out, Check{Scope: c.scope, Area: area, Status: st, Evidence: evidence, Fix: fix})
}

func (c *checks) pass(area, format string, args ...any) {
	c.add(area, Pass, fmt.Sprintf(format, args...), "")
}

func join(items []string, max int) string {
	if len(items) > max {
		return strings.Join(items[:max], "; ") + fmt.Sprintf("; and %d more", len(items)-max)
	}
	return strings.Join(items, "; ")
}
