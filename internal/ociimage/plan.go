package ociimage

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// EntryKind is what a layer entry is.
type EntryKind int

const (
	KindDir EntryKind = iota
	KindFile
	KindSymlink
)

func (k EntryKind) String() string {
	return [...]string{"directory", "file", "symlink"}[k]
}

// Entry is one path of the planned layer.
type Entry struct {
	Path string // absolute, clean
	Kind EntryKind
	Mode fs.FileMode // permission bits (and setuid/setgid/sticky)
	// Src is the host file a KindFile is copied from; Content is used when Src is empty.
	Src     string
	Content []byte
	// Target is a KindSymlink's target.
	Target string
	// from says which spec field asked for the entry, for conflict messages.
	from string
}

// Library is a shared library (or the program interpreter) an executable
// needs: the host file to copy and where it goes in the image.
type Library struct {
	Src, Dst string
}

// Host is what planning asks of the machine: file modes and the libraries an
// executable needs. HostFS is the real one.
type Host interface {
	// Mode returns the permission bits of a host file, following symlinks.
	Mode(path string) (fs.FileMode, error)
	// Libraries returns every shared library the executable at path needs,
	// transitively, plus its program interpreter; none for a static binary.
	Libraries(path string) ([]Library, error)
}

// Plan validates the spec and turns it into the layer's entries, sorted by
// path: explicit entries, libraries of executables, /etc/passwd and
// /etc/group, and every implicit parent directory. Two entries for one path
// are an error unless they are the same (a library two executables share).
func Plan(s Spec, h Host) ([]Entry, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := planner{name: s.Name(), entries: map[string]Entry{}}
	for i, d := range s.Dirs {
		mode := normMode(d.Mode)
		if mode == 0 {
			mode = 0o755
		}
		if err := p.add(Entry{Path: d.Path, Kind: KindDir, Mode: mode, from: fmt.Sprintf("dirs[%d]", i)}); err != nil {
			return nil, err
		}
	}
	for i, f := range s.Files {
		e := Entry{Path: f.Dst, Kind: KindFile, Mode: normMode(f.Mode), Src: f.Src, Content: f.Content, from: fmt.Sprintf("files[%d]", i)}
		if e.Src == "" && e.Content == nil {
			e.Content = []byte{}
		}
		if e.Mode == 0 {
			if e.Src == "" {
				e.Mode = 0o644
			} else {
				m, err := h.Mode(f.Src)
				if err != nil {
					return nil, fmt.Errorf("image %s: %s.src: %w", p.name, e.from, err)
				}
				e.Mode = m
			}
		}
		if err := p.add(e); err != nil {
			return nil, err
		}
	}
	for i, x := range s.Executables {
		from := fmt.Sprintf("executables[%d]", i)
		m, err := h.Mode(x.Src)
		if err != nil {
			return nil, fmt.Errorf("image %s: %s.src: %w", p.name, from, err)
		}
		if err := p.add(Entry{Path: x.Dst, Kind: KindFile, Mode: m, Src: x.Src, from: from}); err != nil {
			return nil, err
		}
		libs, err := h.Libraries(x.Src)
		if err != nil {
			return nil, fmt.Errorf("image %s: %s: %w", p.name, from, err)
		}
		for _, l := range libs {
			lm, err := h.Mode(l.Src)
			if err != nil {
				return nil, fmt.Errorf("image %s: %s: library %s: %w", p.name, from, l.Src, err)
			}
			if err := p.add(Entry{Path: l.Dst, Kind: KindFile, Mode: lm, Src: l.Src, from: from + " (library of " + x.Src + ")"}); err != nil {
				return nil, err
			}
		}
	}
	for i, l := range s.Symlinks {
		if err := p.add(Entry{Path: l.Path, Kind: KindSymlink, Mode: 0o777, Target: l.Target, from: fmt.Sprintf("symlinks[%d]", i)}); err != nil {
			return nil, err
		}
	}
	for _, db := range []struct {
		file  string
		lines []string
	}{{"/etc/passwd", s.Passwd}, {"/etc/group", s.Group}} {
		if len(db.lines) == 0 {
			continue
		}
		content := []byte(strings.Join(db.lines, "\n") + "\n")
		if err := p.add(Entry{Path: db.file, Kind: KindFile, Mode: 0o644, Content: content, from: strings.TrimPrefix(db.file, "/etc/")}); err != nil {
			return nil, err
		}
	}
	return p.finish()
}

type planner struct {
	name    string
	entries map[string]Entry
}

func (p *planner) add(e Entry) error {
	old, ok := p.entries[e.Path]
	if !ok {
		p.entries[e.Path] = e
		return nil
	}
	if same(old, e) {
		return nil
	}
	return fmt.Errorf("image %s: %s: %s %s conflicts with the %s there from %s", p.name, e.from, e.Kind, e.Path, old.Kind, old.from)
}

// same reports whether two entries for one path write the same thing.
func same(a, b Entry) bool {
	if a.Kind != b.Kind || a.Mode != b.Mode {
		return false
	}
	switch a.Kind {
	case KindSymlink:
		return a.Target == b.Target
	case KindFile:
		if a.Src != "" || b.Src != "" {
			return a.Src == b.Src
		}
		return bytes.Equal(a.Content, b.Content)
	}
	return true
}

// finish adds the implicit parent directories and sorts. A parent that is a
// file or a symlink is an error: the layer would replace it or write through it.
func (p *planner) finish() ([]Entry, error) {
	for _, e := range p.entries {
		for dir := path.Dir(e.Path); dir != "/"; dir = path.Dir(dir) {
			old, ok := p.entries[dir]
			if !ok {
				p.entries[dir] = Entry{Path: dir, Kind: KindDir, Mode: 0o755, from: "parent of " + e.Path}
				continue
			}
			if old.Kind != KindDir {
				return nil, fmt.Errorf("image %s: %s: %s needs directory %s, but %s made it a %s", p.name, e.from, e.Path, dir, old.from, old.Kind)
			}
		}
	}
	out := make([]Entry, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
