package ociimage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// HostFS is the machine's file system as Plan sees it.
type HostFS struct {
	// LdSoConf is the loader configuration; default /etc/ld.so.conf.
	LdSoConf string
}

// Mode returns the permission bits of a host file, following symlinks.
func (h HostFS) Mode(p string) (fs.FileMode, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, &fs.PathError{Op: "copy", Path: p, Err: errNotRegular}
	}
	return fi.Mode() & modeBits, nil
}

// Libraries resolves the shared libraries of the executable at p.
func (h HostFS) Libraries(p string) ([]Library, error) {
	conf := h.LdSoConf
	if conf == "" {
		conf = "/etc/ld.so.conf"
	}
	dirs, err := ldsoConfDirs(conf, os.ReadFile, func(pat string) ([]string, error) {
		m, err := filepath.Glob(pat)
		sort.Strings(m)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	// The loader's $ORIGIN for the program is the directory of its real file
	// (it reads /proc/self/exe), not of a symlink it was started through.
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err
	}
	return resolveLibraries(real, readELF, dirs)
}

var errNotRegular = errors.New("not a regular file")
