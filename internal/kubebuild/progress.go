package kubebuild

import (
	"fmt"
	"strings"
	"time"
)

// goOutput digests what `go build -v` writes on stderr: one import path per
// package it compiles (cached packages are not listed), and any other line
// (downloads, compiler errors) kept as the tail shown when the build fails.
type goOutput struct {
	packages int
	tail     []string // the last tailLines non-package lines
}

const tailLines = 40

func (o *goOutput) line(s string) {
	if isPackageLine(s) {
		o.packages++
		return
	}
	o.tail = append(o.tail, s)
	if len(o.tail) > tailLines {
		o.tail = o.tail[len(o.tail)-tailLines:]
	}
}

func (o *goOutput) tailText() string { return strings.Join(o.tail, "\n") }

// isPackageLine reports whether a line of `go build -v` output is an import
// path: no spaces, no colon (errors are "file.go:12:3: msg"), not a "# pkg"
// header.
func isPackageLine(s string) bool {
	if s == "" || strings.HasPrefix(s, "#") || strings.ContainsAny(s, " \t:") {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("./_-~+", r)
		if !ok {
			return false
		}
	}
	return true
}

// heartbeat is the line printed while a long go command runs; doing says
// what it does ("building kubelet, kubectl").
func heartbeat(doing string, packages int, elapsed time.Duration) string {
	if packages < 0 {
		return fmt.Sprintf("still %s: %s", doing, clock(elapsed))
	}
	return fmt.Sprintf("still %s: %s compiled, %s", doing, packagesText(packages), clock(elapsed))
}

// clock formats a duration as 6m30s / 45s / 1h2m3s, whole seconds.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Second {
		return "0s"
	}
	return d.String()
}

// thousands formats n with comma separators: 1234 -> "1,234".
func thousands(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// joinTargets lists targets for a message: "kubelet, kubectl".
func joinTargets(ts []Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// minutes says "1 minute" or "14 minutes".
func minutes(n int) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// packagesText says "1 package" or "1,234 packages".
func packagesText(n int) string {
	if n == 1 {
		return "1 package"
	}
	return thousands(n) + " packages"
}
