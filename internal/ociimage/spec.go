// Package ociimage writes container image tarballs without Docker or a
// registry: an image is described as plain data (a Spec: files and host
// executables to copy, symlinks, directories, users, entrypoint), planned into
// a sorted list of layer entries, and written as one deterministic layer in a
// docker-archive tarball (the `docker save` layout: manifest.json, the config
// and an uncompressed layer.tar), which `ctr -n k8s.io images import FILE`
// loads into containerd. The same inputs give the same bytes: fixed
// modification times, owners and ordering.
//
// Host executables are copied with the shared libraries they need, found as
// the dynamic loader finds them (DT_NEEDED, RPATH/RUNPATH, ld.so.conf, the
// system directories; see elflibs.go), so tools such as curl or nft run in an
// image with nothing else in it.
package ociimage

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Spec describes one image.
type Spec struct {
	// Tags are the references the image is imported under, e.g.
	// "registry.k8s.io/pause:3.10.2"; at least one, each with an explicit tag.
	Tags []string
	// Files are copied from the host or written from Content.
	Files []File
	// Executables are host programs copied with every shared library they
	// need and their program interpreter, at the paths the loader will look.
	Executables []Executable
	// Symlinks and Dirs are created as given; parent directories of every
	// entry are created implicitly (mode 0755).
	Symlinks []Symlink
	Dirs     []Dir
	// Passwd and Group are the lines of /etc/passwd and /etc/group (written
	// only when non-empty), e.g. "root:x:0:0:root:/root:/bin/sh".
	Passwd []string
	Group  []string
	// Entrypoint, Cmd, Env, WorkingDir and User go into the image config. Env
	// gets DefaultPath unless it sets PATH.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// DefaultPath is the PATH an image gets unless its Env sets one.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// File is a regular file in the image.
type File struct {
	// Src is a host file to copy (symlinks followed); or leave it empty and
	// give Content.
	Src     string
	Content []byte
	// Dst is the absolute path in the image.
	Dst string
	// Mode holds the permission bits and setuid/setgid/sticky, as fs.FileMode
	// flags or as the Unix octal 04000/02000/01000; 0 means the host file's,
	// or 0644 for Content.
	Mode fs.FileMode
}

// Executable is a host program copied to Dst with its shared libraries.
type Executable struct {
	Src string
	Dst string
}

// Symlink is a symbolic link at Path pointing to Target (relative or absolute).
type Symlink struct {
	Path   string
	Target string
}

// Dir is a directory; Mode as for File (0o1777 is a sticky /tmp), 0 means 0755.
type Dir struct {
	Path string
	Mode fs.FileMode
}

const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// unixSpecial are the Unix octal setuid, setgid and sticky bits, which
// fs.FileMode leaves unused and normMode translates.
const unixSpecial = 0o7000

// normMode turns Unix octal special bits into fs.FileMode flags.
func normMode(m fs.FileMode) fs.FileMode {
	if m&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m &^ unixSpecial
}

// Name is the spec's first tag, used to name it in messages.
func (s Spec) Name() string {
	if len(s.Tags) == 0 {
		return "(untagged image)"
	}
	return s.Tags[0]
}

// Validate checks every field; the error names the image and the field.
func (s Spec) Validate() error {
	errf := func(field string, format string, args ...any) error {
		return fmt.Errorf("image %s: %s: %s", s.Name(), field, fmt.Sprintf(format, args...))
	}
	if len(s.Tags) == 0 {
		return errf("tags", "at least one tag is required")
	}
	seen := map[string]bool{}
	for i, t := range s.Tags {
		if _, err := name.NewTag(t, name.StrictValidation); err != nil {
			return errf(fmt.Sprintf("tags[%d]", i), "%q: %v (want REGISTRY/REPO:TAG)", t, err)
		}
		if seen[t] {
			return errf(fmt.Sprintf("tags[%d]", i), "%q appears twice", t)
		}
		seen[t] = true
	}
	for i, f := range s.Files {
		field := fmt.Sprintf("files[%d]", i)
		if err := checkPath(f.Dst); err != nil {
			return errf(field+".dst", "%v", err)
		}
		if f.Src != "" && f.Content != nil {
			return errf(field, "give src or content, not both")
		}
		if f.Src != "" && !path.IsAbs(f.Src) {
			return errf(field+".src", "%q is not an absolute host path", f.Src)
		}
		if f.Mode&^(modeBits|unixSpecial) != 0 {
			return errf(field+".mode", "%v has bits other than permissions", f.Mode)
		}
	}
	for i, e := range s.Executables {
		field := fmt.Sprintf("executables[%d]", i)
		if !path.IsAbs(e.Src) {
			return errf(field+".src", "%q is not an absolute host path", e.Src)
		}
		if err := checkPath(e.Dst); err != nil {
			return errf(field+".dst", "%v", err)
		}
	}
	for i, l := range s.Symlinks {
		field := fmt.Sprintf("symlinks[%d]", i)
		if err := checkPath(l.Path); err != nil {
			return errf(field+".path", "%v", err)
		}
		if l.Target == "" || strings.ContainsRune(l.Target, 0) {
			return errf(field+".target", "%q is not a link target", l.Target)
		}
	}
	for i, d := range s.Dirs {
		field := fmt.Sprintf("dirs[%d]", i)
		if err := checkPath(d.Path); err != nil {
			return errf(field+".path", "%v", err)
		}
		if d.Mode&^(modeBits|unixSpecial) != 0 {
			return errf(field+".mode", "%v has bits other than permissions", d.Mode)
		}
	}
	for i, l := range s.Passwd {
		if err := checkDBLine(l, 7); err != nil {
			return errf(fmt.Sprintf("passwd[%d]", i), "%v", err)
		}
	}
	for i, l := range s.Group {
		if err := checkDBLine(l, 4); err != nil {
			return errf(fmt.Sprintf("group[%d]", i), "%v", err)
		}
	}
	for i, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return errf(fmt.Sprintf("env[%d]", i), "%q is not NAME=VALUE", e)
		}
	}
	if s.WorkingDir != "" {
		if err := checkPath(s.WorkingDir); err != nil && s.WorkingDir != "/" {
			return errf("workingDir", "%v", err)
		}
	}
	return nil
}

// checkPath accepts clean absolute paths other than "/".
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("path is empty")
	case !path.IsAbs(p):
		return fmt.Errorf("%q is not absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean (want %q)", p, path.Clean(p))
	case p == "/":
		return fmt.Errorf(`"/" is the image root`)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%q contains NUL", p)
	}
	return nil
}

// checkDBLine checks a line of /etc/passwd (7 fields) or /etc/group (4).
func checkDBLine(l string, fields int) error {
	if strings.ContainsAny(l, "\n\x00") {
		return fmt.Errorf("%q spans lines", l)
	}
	f := strings.Split(l, ":")
	if len(f) != fields || f[0] == "" {
		return fmt.Errorf("%q has %d colon-separated fields, want %d with a name first", l, len(f), fields)
	}
	return nil
}

// env is the image's environment: Env, with DefaultPath unless it sets PATH.
func (s Spec) env() []string {
	for _, e := range s.Env {
		if strings.HasPrefix(e, "PATH=") {
			return s.Env
		}
	}
	return append([]string{DefaultPath}, s.Env...)
}
