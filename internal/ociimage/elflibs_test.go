package ociimage

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func TestLdsoConfDirs(t *testing.T) {
	files := map[string]string{
		"/etc/ld.so.conf":                      "include /etc/ld.so.conf.d/*.conf\n/opt/extra/lib # trailing comment\n",
		"/etc/ld.so.conf.d/libc.conf":          "# libc default configuration\n/usr/local/lib\n",
		"/etc/ld.so.conf.d/x86_64.conf":        "/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/\ninclude ../loop.conf\nhwcap 0 nosegneg\n",
		"/etc/loop.conf":                       "include /etc/ld.so.conf\n/usr/local/lib\n/relative-is-kept-only-if-absolute\nnot/absolute\n",
		"/etc/ld.so.conf.d/zz-missing-ok.conf": "include /etc/nope/*.conf\n",
	}
	glob := func(pat string) ([]string, error) {
		var out []string
		for f := range files {
			if ok, _ := path.Match(pat, f); ok {
				out = append(out, f)
			}
		}
		sort.Strings(out)
		return out, nil
	}
	read := func(f string) ([]byte, error) {
		s, ok := files[f]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: f, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	got, err := ldsoConfDirs("/etc/ld.so.conf", read, glob)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/local/lib", "/usr/local/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
		"/relative-is-kept-only-if-absolute", "/opt/extra/lib"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dirs:\n got %v\nwant %v", got, want)
	}
	if got, err := ldsoConfDirs("/nonexistent", read, glob); err != nil || len(got) != 0 {
		t.Errorf("missing ld.so.conf: %v, %v; want nothing, no error", got, err)
	}
}

// fakeELF is a file system of ELF objects for resolveLibraries.
type fakeELF map[string]elfInfo

func (f fakeELF) read(p string) (elfInfo, error) {
	if i, ok := f[p]; ok {
		return i, nil
	}
	return elfInfo{}, fmt.Errorf("open %s: %w", p, fs.ErrNotExist)
}

func lib(needed ...string) elfInfo {
	return elfInfo{class: elf.ELFCLASS64, machine: elf.EM_X86_64, needed: needed}
}

func TestResolveLibraries(t *testing.T) {
	const ld = "/lib64/ld-linux-x86-64.so.2"
	exe := func(needed ...string) elfInfo { i := lib(needed...); i.interp = ld; return i }
	conf := []string{"/usr/local/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}
	for _, tc := range []struct {
		name string
		fs   fakeELF
		want []Library
		err  string
	}{
		{
			name: "static",
			fs:   fakeELF{"/bin/x": lib()},
		},
		{
			name: "libc through ld.so.conf, shared library once, breadth first",
			fs: fakeELF{
				"/bin/x":                                 exe("libcurl.so.4", "libc.so.6"),
				ld:                                       lib(),
				"/usr/lib/x86_64-linux-gnu/libcurl.so.4": lib("libssl.so.3", "libc.so.6"),
				"/usr/lib/x86_64-linux-gnu/libssl.so.3":  lib("libc.so.6"),
				"/lib/x86_64-linux-gnu/libc.so.6":        lib("ld-linux-x86-64.so.2"), // the loaded interpreter
				"/usr/lib/x86_64-linux-gnu/libc.so.6":    lib(),                       // shadowed by /lib, conf order
			},
			want: []Library{
				{ld, ld},
				{"/usr/lib/x86_64-linux-gnu/libcurl.so.4", "/usr/lib/x86_64-linux-gnu/libcurl.so.4"},
				{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
				{"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3"},
			},
		},
		{
			name: "found only through ld.so.conf: moved to a system directory",
			fs: fakeELF{
				"/bin/x":                       exe("libextra.so.1"),
				ld:                             lib(),
				"/usr/local/lib/libextra.so.1": lib(),
			},
			want: []Library{{ld, ld}, {"/usr/local/lib/libextra.so.1", "/lib/x86_64-linux-gnu/libextra.so.1"}},
		},
		{
			name: "RUNPATH with $ORIGIN, before ld.so.conf; wrong class skipped",
			fs: fakeELF{
				"/opt/app/bin/x":                  func() elfInfo { i := exe("libapp.so", "libz.so.1"); i.runpath = []string{"$ORIGIN/../lib"}; return i }(),
				ld:                                lib(),
				"/opt/app/lib/libapp.so":          lib(),
				"/usr/local/lib/libz.so.1":        {class: elf.ELFCLASS32, machine: elf.EM_386},
				"/lib/x86_64-linux-gnu/libz.so.1": lib(),
				"/lib/x86_64-linux-gnu/libapp.so": lib(),
			},
			want: []Library{{ld, ld}, {"/opt/app/lib/libapp.so", "/opt/app/lib/libapp.so"}, {"/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"}},
		},
		{
			name: "RPATH of the executable applies to its libraries; RUNPATH of a library only to its own needs",
			fs: fakeELF{
				"/bin/x":         func() elfInfo { i := exe("liba.so"); i.rpath = []string{"/opt/r"}; return i }(),
				ld:               lib(),
				"/opt/r/liba.so": func() elfInfo { i := lib("libb.so", "libc.so"); return i }(),
				"/opt/r/libb.so": lib(),
				"/opt/r/libc.so": lib(),
			},
			want: []Library{{ld, ld}, {"/opt/r/liba.so", "/opt/r/liba.so"}, {"/opt/r/libb.so", "/opt/r/libb.so"}, {"/opt/r/libc.so", "/opt/r/libc.so"}},
		},
		{
			name: "a library with RUNPATH ignores RPATH",
			fs: fakeELF{
				"/bin/x":           func() elfInfo { i := exe("liba.so"); i.rpath = []string{"/opt/r"}; return i }(),
				ld:                 lib(),
				"/opt/r/liba.so":   func() elfInfo { i := lib("libb.so"); i.runpath = []string{"/opt/run"}; return i }(),
				"/opt/r/libb.so":   lib(),
				"/opt/run/libb.so": lib(),
			},
			want: []Library{{ld, ld}, {"/opt/r/liba.so", "/opt/r/liba.so"}, {"/opt/run/libb.so", "/opt/run/libb.so"}},
		},
		{
			name: "system directory fallback",
			fs: fakeELF{
				"/bin/x":             exe("libold.so"),
				ld:                   lib(),
				"/usr/lib/libold.so": lib(),
			},
			want: []Library{{ld, ld}, {"/usr/lib/libold.so", "/usr/lib/libold.so"}},
		},
		{
			name: "missing library",
			fs:   fakeELF{"/bin/x": exe("libgone.so.1", "libc.so.6"), ld: lib(), "/lib/x86_64-linux-gnu/libc.so.6": lib()},
			err:  "/bin/x needs libgone.so.1 (through /bin/x), which is not in its RPATH/RUNPATH, ld.so.conf or [/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib]",
		},
		{
			name: "missing interpreter",
			fs:   fakeELF{"/bin/x": exe()},
			err:  "/bin/x: program interpreter " + ld,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveLibraries(firstExe(tc.fs), tc.fs.read, conf)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("libraries:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// firstExe is the test's executable: the path ending in /x.
func firstExe(f fakeELF) string {
	for p := range f {
		if strings.HasSuffix(p, "/x") {
			return p
		}
	}
	return ""
}

// TestHostLibrariesMatchLdd checks the resolver against the real loader: for
// programs the lab's images copy, the libraries found must be exactly those
// ldd lists, at the same paths.
func TestHostLibrariesMatchLdd(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the host's programs")
	}
	lineRE := regexp.MustCompile(`^\s*(\S+)(?: => (\S+))? \(0x[0-9a-f]+\)$`)
	for _, prog := range []string{"/usr/bin/curl", "/usr/sbin/nft", "/usr/bin/dig", "/usr/bin/bash", "/usr/bin/wget", "/usr/bin/getent"} {
		if _, err := os.Stat(prog); err != nil {
			t.Fatalf("%s is missing: run scripts/install-deps.sh (%v)", prog, err)
		}
		out, err := exec.Command("ldd", prog).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", prog, err)
		}
		var want []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("ldd %s: unexpected line %q", prog, l)
			}
			switch {
			case m[2] != "":
				want = append(want, m[2])
			case strings.HasPrefix(m[1], "/"):
				want = append(want, m[1]) // the interpreter
			} // linux-vdso.so.1 is the kernel's
		}
		libs, err := HostFS{}.Libraries(prog)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range libs {
			got = append(got, l.Src)
			if l.Src != l.Dst {
				t.Errorf("%s: %s would move to %s; on this host every library is in a system directory", prog, l.Src, l.Dst)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n resolved %v\n ldd      %v", prog, got, want)
		}
	}
	if libs, err := (HostFS{}).Libraries("/usr/local/lib/fjord/cni/loopback"); err != nil || len(libs) != 0 {
		t.Errorf("static CGO_ENABLED=0 loopback plugin: libraries %v, %v; want none", libs, err)
	}
}

// TestSystemDirsMatchLoader checks the hard-coded system directories against
// what this host's loader reports.
func TestSystemDirsMatchLoader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the host's loader")
	}
	info, err := readELF("/usr/bin/dash")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(info.interp, "--list-diagnostics").Output()
	if err != nil {
		t.Fatalf("%s --list-diagnostics: %v", info.interp, err)
	}
	var loader []string
	for _, m := range regexp.MustCompile(`(?m)^path\.system_dirs\[0x[0-9a-f]+\]="([^"]+)"$`).FindAllStringSubmatch(string(out), -1) {
		loader = append(loader, strings.TrimSuffix(m[1], "/"))
	}
	if got := systemDirs(info.machine); !reflect.DeepEqual(got, loader) {
		t.Errorf("systemDirs = %v, the loader says %v", got, loader)
	}
}
