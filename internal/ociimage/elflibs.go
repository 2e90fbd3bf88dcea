package ociimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Shared libraries are found the way glibc's dynamic loader finds them (see
// ld.so(8)), read with debug/elf rather than by running ldd: ldd executes the
// loader on the binary, which is neither needed nor safe for a file that is
// only being copied, and its output format is not an interface. For each
// DT_NEEDED name, in breadth-first order, the first of these that holds an
// ELF object of the executable's class and machine wins (one object per
// name, as the loader keeps one per soname):
//
//  1. DT_RPATH of the object that needs it and of the executable, unless the
//     object has DT_RUNPATH;
//  2. the object's DT_RUNPATH;
//  3. the directories of /etc/ld.so.conf (what ldconfig puts in ld.so.cache);
//  4. the loader's system directories.
//
// $ORIGIN is the directory of the object. A library goes into the image at
// the path it was found, so the image's loader (the host's, copied) finds it
// the same way; one found only through ld.so.conf (the image has no
// ld.so.cache) goes into the first system directory instead.

// elfInfo is what resolution needs of one ELF object.
type elfInfo struct {
	class   elf.Class
	machine elf.Machine
	interp  string // PT_INTERP, executables only
	soname  string // DT_SONAME, shared libraries
	needed  []string
	rpath   []string
	runpath []string
}

// readELF reads the dynamic section and program interpreter of an ELF file.
func readELF(p string) (elfInfo, error) {
	f, err := elf.Open(p)
	if err != nil {
		return elfInfo{}, err
	}
	defer f.Close()
	info := elfInfo{class: f.Class, machine: f.Machine}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return elfInfo{}, fmt.Errorf("%s: reading PT_INTERP: %w", p, err)
			}
			info.interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if f.Section(".dynamic") == nil && dynamicProg(f) == nil {
		return info, nil // static
	}
	if info.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return elfInfo{}, fmt.Errorf("%s: DT_NEEDED: %w", p, err)
	}
	if so, err := f.DynString(elf.DT_SONAME); err != nil {
		return elfInfo{}, fmt.Errorf("%s: DT_SONAME: %w", p, err)
	} else if len(so) > 0 {
		info.soname = so[0]
	}
	for _, tag := range []elf.DynTag{elf.DT_RPATH, elf.DT_RUNPATH} {
		vals, err := f.DynString(tag)
		if err != nil {
			return elfInfo{}, fmt.Errorf("%s: %v: %w", p, tag, err)
		}
		var dirs []string
		for _, v := range vals {
			dirs = append(dirs, filepath.SplitList(v)...)
		}
		if tag == elf.DT_RPATH {
			info.rpath = dirs
		} else {
			info.runpath = dirs
		}
	}
	return info, nil
}

func dynamicProg(f *elf.File) *elf.Prog {
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC {
			return p
		}
	}
	return nil
}

// multiarch is Debian's multiarch tuple for a machine: the loader's first
// system directories are /lib/<tuple> and /usr/lib/<tuple>.
func multiarch(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	case elf.EM_PPC64:
		return "powerpc64le-linux-gnu"
	case elf.EM_S390:
		return "s390x-linux-gnu"
	case elf.EM_RISCV:
		return "riscv64-linux-gnu"
	}
	return ""
}

// systemDirs are the directories Debian's loader searches after ld.so.cache
// (`ld.so --list-diagnostics` shows them as path.system_dirs).
func systemDirs(m elf.Machine) []string {
	if t := multiarch(m); t != "" {
		return []string{"/lib/" + t, "/usr/lib/" + t, "/lib", "/usr/lib"}
	}
	return []string{"/lib", "/usr/lib"}
}

// resolveLibraries finds the libraries exe needs (transitively) and its
// interpreter. read reads an ELF file (an error means "not there or not
// usable"); confDirs are ld.so.conf's directories.
func resolveLibraries(exe string, read func(string) (elfInfo, error), confDirs []string) ([]Library, error) {
	top, err := read(exe)
	if err != nil {
		return nil, err
	}
	if len(top.needed) == 0 && top.interp == "" {
		return nil, nil // static
	}
	sys := systemDirs(top.machine)
	isSys := map[string]bool{}
	for _, d := range sys {
		isSys[d] = true
	}
	var libs []Library
	found := map[string]bool{}
	if top.interp != "" {
		interp, err := read(top.interp)
		if err != nil {
			return nil, fmt.Errorf("%s: program interpreter %s: %w", exe, top.interp, err)
		}
		libs = append(libs, Library{Src: top.interp, Dst: top.interp})
		// The loader is loaded already: a library needing it by name (libc
		// needs ld-linux-x86-64.so.2) gets it, not another copy.
		found[path.Base(top.interp)] = true
		if interp.soname != "" {
			found[interp.soname] = true
		}
	}
	type object struct {
		path string
		info elfInfo
	}
	queue := []object{{exe, top}}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		for _, name := range obj.info.needed {
			if found[name] {
				continue
			}
			found[name] = true
			type candidate struct {
				dir      string
				relocate bool // found only through ld.so.conf: move to a system dir
			}
			var cands []candidate
			origin := func(dirs []string, of string) {
				for _, d := range dirs {
					d = strings.NewReplacer("${ORIGIN}", path.Dir(of), "$ORIGIN", path.Dir(of)).Replace(d)
					cands = append(cands, candidate{dir: d})
				}
			}
			if strings.Contains(name, "/") {
				cands = append(cands, candidate{dir: ""})
			} else {
				if len(obj.info.runpath) == 0 {
					origin(obj.info.rpath, obj.path)
					if obj.path != exe {
						origin(top.rpath, exe)
					}
				}
				origin(obj.info.runpath, obj.path)
				for _, d := range confDirs {
					cands = append(cands, candidate{dir: d, relocate: !isSys[d]})
				}
				for _, d := range sys {
					cands = append(cands, candidate{dir: d})
				}
			}
			var hit *object
			var dst string
			for _, c := range cands {
				p := name
				if c.dir != "" {
					p = path.Join(c.dir, name)
				}
				info, err := read(p)
				if err != nil || info.class != top.class || info.machine != top.machine {
					continue
				}
				hit, dst = &object{p, info}, p
				if c.relocate {
					dst = path.Join(sys[0], name)
				}
				break
			}
			if hit == nil {
				return nil, fmt.Errorf("%s needs %s (through %s), which is not in its RPATH/RUNPATH, ld.so.conf or %v", exe, name, obj.path, sys)
			}
			libs = append(libs, Library{Src: hit.path, Dst: dst})
			queue = append(queue, *hit)
		}
	}
	return libs, nil
}

// ldsoConfDirs reads an ld.so.conf: one directory per line, "#" comments,
// "include GLOB" lines (relative globs are relative to the including file's
// directory), "hwcap" lines ignored. Files that do not exist are skipped, as
// ldconfig does; include loops are cut.
func ldsoConfDirs(file string, readFile func(string) ([]byte, error), glob func(string) ([]string, error)) ([]string, error) {
	var dirs []string
	seenDir := map[string]bool{}
	visited := map[string]bool{}
	var walk func(string, int) error
	walk = func(f string, depth int) error {
		if visited[f] || depth > 16 {
			return nil
		}
		visited[f] = true
		data, err := readFile(f)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			switch fields[0] {
			case "include":
				for _, pat := range fields[1:] {
					if !path.IsAbs(pat) {
						pat = path.Join(path.Dir(f), pat)
					}
					matches, err := glob(pat)
					if err != nil {
						return fmt.Errorf("%s: include %s: %w", f, pat, err)
					}
					for _, m := range matches {
						if err := walk(m, depth+1); err != nil {
							return err
						}
					}
				}
			case "hwcap":
			default:
				for _, d := range fields {
					d = path.Clean(d)
					if path.IsAbs(d) && !seenDir[d] {
						seenDir[d] = true
						dirs = append(dirs, d)
					}
				}
			}
		}
		return nil
	}
	if err := walk(file, 0); err != nil {
		return nil, err
	}
	return dirs, nil
}
