// Package benchkit holds what fjord's benchmark programs share: rewriting their
// section of docs/benchmarks.md, order statistics, and facts about the machine and
// the tree that every report states.
package benchkit

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Marks returns the comment lines that delimit a program's section.
func Marks(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// WriteSection replaces the text between the markers of section name with body. When
// the markers are missing it puts them under "## heading" (creating the document or
// the heading if needed), replacing a "_Not measured yet._" placeholder, and refuses
// to overwrite any other text there. The file is replaced atomically.
func WriteSection(path, heading, name, body string) error {
	begin, end := Marks(name)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		b, err = []byte("# Benchmarks\n"), nil
	}
	if err != nil {
		return err
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		hd := "## " + heading + "\n"
		k := strings.Index(doc, hd)
		if k < 0 {
			doc = strings.TrimRight(doc, "\n") + "\n\n" + hd
			k = strings.Index(doc, hd)
		}
		// The section's text runs to the next "## " heading.
		rest := doc[k+len(hd):]
		stop := len(rest)
		if x := strings.Index(rest, "\n## "); x >= 0 {
			stop = x + 1
		}
		if old := strings.TrimSpace(rest[:stop]); old != "" && old != "_Not measured yet._" {
			return fmt.Errorf("%s: the %s section has text but no %s markers; not overwriting it", path, heading, name)
		}
		tail := strings.TrimLeft(rest[stop:], "\n")
		if tail != "" {
			tail = "\n" + tail
		}
		doc = doc[:k+len(hd)] + "\n" + begin + "\n" + end + "\n" + tail
		i, j = strings.Index(doc, begin), strings.Index(doc, end)
	}
	doc = doc[:i+len(begin)] + "\n" + body + doc[j:]
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Quantile interpolates linearly between order statistics (type 7); NaN for no data.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// Median is Quantile(v, 0.5).
func Median(v []float64) float64 { return Quantile(v, 0.5) }

// Pct is the nearest-rank percentile (p99 of 400 samples = the 396th smallest); NaN
// for no data.
func Pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(k, 0)]
}

// LoadAvg is the first three fields of /proc/loadavg, "?" if unreadable.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Commit describes the checkout at repo: its short commit, marked when tracked files
// have uncommitted changes; "unknown" outside git.
func Commit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}
