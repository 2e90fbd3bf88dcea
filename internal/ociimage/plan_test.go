package ociimage

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// fakeHost answers Mode and Libraries from maps.
type fakeHost struct {
	modes map[string]fs.FileMode
	libs  map[string][]Library
}

func (h fakeHost) Mode(p string) (fs.FileMode, error) {
	m, ok := h.modes[p]
	if !ok {
		return 0, fmt.Errorf("stat %s: %w", p, fs.ErrNotExist)
	}
	return m, nil
}

func (h fakeHost) Libraries(p string) ([]Library, error) { return h.libs[p], nil }

func testHost() fakeHost {
	return fakeHost{
		modes: map[string]fs.FileMode{
			"/usr/bin/curl": 0o755, "/usr/bin/dash": 0o755, "/bin/busybox": 0o755, "/srv/agnhost": 0o755,
			"/lib64/ld-linux-x86-64.so.2": 0o755, "/lib/x86_64-linux-gnu/libc.so.6": 0o755,
			"/usr/lib/x86_64-linux-gnu/libcurl.so.4": 0o644, "/srv/cert.pem": 0o600,
		},
		libs: map[string][]Library{
			"/usr/bin/curl": {
				{Src: "/lib64/ld-linux-x86-64.so.2", Dst: "/lib64/ld-linux-x86-64.so.2"},
				{Src: "/usr/lib/x86_64-linux-gnu/libcurl.so.4", Dst: "/usr/lib/x86_64-linux-gnu/libcurl.so.4"},
				{Src: "/lib/x86_64-linux-gnu/libc.so.6", Dst: "/lib/x86_64-linux-gnu/libc.so.6"},
			},
			"/usr/bin/dash": {
				{Src: "/lib64/ld-linux-x86-64.so.2", Dst: "/lib64/ld-linux-x86-64.so.2"},
				{Src: "/lib/x86_64-linux-gnu/libc.so.6", Dst: "/lib/x86_64-linux-gnu/libc.so.6"},
			},
		},
	}
}

// render prints entries one per line, as golden text.
func render(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		switch e.Kind {
		case KindDir:
			fmt.Fprintf(&b, "d %04o %s\n", tarMode(e.Mode), e.Path)
		case KindSymlink:
			fmt.Fprintf(&b, "l %04o %s -> %s\n", tarMode(e.Mode), e.Path, e.Target)
		case KindFile:
			src := e.Src
			if src == "" {
				src = fmt.Sprintf("%q", e.Content)
			}
			fmt.Fprintf(&b, "f %04o %s < %s\n", tarMode(e.Mode), e.Path, src)
		}
	}
	return b.String()
}

func TestPlan(t *testing.T) {
	s := Spec{
		Tags:        []string{"registry.k8s.io/e2e-test-images/agnhost:2.66.1"},
		Files:       []File{{Src: "/srv/agnhost", Dst: "/agnhost"}, {Src: "/srv/cert.pem", Dst: "/localhost.crt", Mode: 0o644}, {Content: []byte("hosts: files dns\n"), Dst: "/etc/nsswitch.conf"}},
		Executables: []Executable{{Src: "/usr/bin/dash", Dst: "/bin/sh"}, {Src: "/usr/bin/curl", Dst: "/usr/bin/curl"}},
		Symlinks:    []Symlink{{Path: "/agnhost-2", Target: "agnhost"}, {Path: "/bin/ls", Target: "/bin/busybox"}},
		Dirs:        []Dir{{Path: "/tmp", Mode: 0o1777}, {Path: "/uploads"}, {Path: "/srv", Mode: 0o750 | fs.ModeSetgid}},
		Passwd:      []string{"root:x:0:0:root:/root:/bin/sh", "user-defined-in-image:x:1000:1000::/home/u:/bin/sh"},
		Group:       []string{"root:x:0:", "group-defined-in-image:x:50000:user-defined-in-image"},
	}
	entries, err := Plan(s, testHost())
	if err != nil {
		t.Fatal(err)
	}
	want := `f 0755 /agnhost < /srv/agnhost
l 0777 /agnhost-2 -> agnhost
d 0755 /bin
l 0777 /bin/ls -> /bin/busybox
f 0755 /bin/sh < /usr/bin/dash
d 0755 /etc
f 0644 /etc/group < "root:x:0:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"
f 0644 /etc/nsswitch.conf < "hosts: files dns\n"
f 0644 /etc/passwd < "root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/u:/bin/sh\n"
d 0755 /lib
d 0755 /lib/x86_64-linux-gnu
f 0755 /lib/x86_64-linux-gnu/libc.so.6 < /lib/x86_64-linux-gnu/libc.so.6
d 0755 /lib64
f 0755 /lib64/ld-linux-x86-64.so.2 < /lib64/ld-linux-x86-64.so.2
f 0644 /localhost.crt < /srv/cert.pem
d 2750 /srv
d 1777 /tmp
d 0755 /uploads
d 0755 /usr
d 0755 /usr/bin
f 0755 /usr/bin/curl < /usr/bin/curl
d 0755 /usr/lib
d 0755 /usr/lib/x86_64-linux-gnu
f 0644 /usr/lib/x86_64-linux-gnu/libcurl.so.4 < /usr/lib/x86_64-linux-gnu/libcurl.so.4
`
	if got := render(entries); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanConflicts(t *testing.T) {
	base := Spec{Tags: []string{"example.com/x:1"}}
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want string // "" means no error
	}{
		{"same library from two executables", func(s *Spec) {
			s.Executables = []Executable{{Src: "/usr/bin/curl", Dst: "/usr/bin/curl"}, {Src: "/usr/bin/dash", Dst: "/bin/sh"}}
		}, ""},
		{"same content twice", func(s *Spec) {
			s.Files = []File{{Content: []byte("a"), Dst: "/a"}, {Content: []byte("a"), Dst: "/a"}}
		}, ""},
		{"symlink over a file", func(s *Spec) {
			s.Executables = []Executable{{Src: "/usr/bin/dash", Dst: "/bin/sh"}}
			s.Symlinks = []Symlink{{Path: "/bin/sh", Target: "/bin/busybox"}}
		}, "symlinks[0]: symlink /bin/sh conflicts with the file there from executables[0]"},
		{"two files at one path", func(s *Spec) {
			s.Files = []File{{Src: "/srv/agnhost", Dst: "/x"}, {Src: "/usr/bin/curl", Dst: "/x"}}
		}, "files[1]: file /x conflicts with the file there from files[0]"},
		{"file under a symlink", func(s *Spec) {
			s.Symlinks = []Symlink{{Path: "/lib", Target: "usr/lib"}}
			s.Executables = []Executable{{Src: "/usr/bin/dash", Dst: "/bin/sh"}}
		}, "needs directory /lib, but symlinks[0] made it a symlink"},
		{"dir with two modes", func(s *Spec) {
			s.Dirs = []Dir{{Path: "/tmp", Mode: 0o777}, {Path: "/tmp", Mode: 0o755}}
		}, "dirs[1]: directory /tmp conflicts"},
		{"missing host file", func(s *Spec) {
			s.Files = []File{{Src: "/nope", Dst: "/nope"}}
		}, "files[0].src: stat /nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.mod(&s)
			_, err := Plan(s, testHost())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			case err != nil && !strings.HasPrefix(err.Error(), "image example.com/x:1: "):
				t.Errorf("error %q does not name the image", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Spec{Tags: []string{"registry.k8s.io/pause:3.10.2"}}
	for _, tc := range []struct {
		mod  func(*Spec)
		want string
	}{
		{func(s *Spec) { s.Tags = nil }, "tags: at least one tag"},
		{func(s *Spec) { s.Tags = []string{"registry.k8s.io/pause"} }, "tags[0]: \"registry.k8s.io/pause\""},
		{func(s *Spec) { s.Tags = []string{"Registry/UPPER:1"} }, "tags[0]"},
		{func(s *Spec) { s.Tags = append(s.Tags, s.Tags[0]) }, "tags[1]: \"registry.k8s.io/pause:3.10.2\" appears twice"},
		{func(s *Spec) { s.Files = []File{{Content: []byte("x"), Dst: "etc/x"}} }, "files[0].dst: \"etc/x\" is not absolute"},
		{func(s *Spec) { s.Files = []File{{Content: []byte("x"), Dst: "/etc/../x"}} }, "files[0].dst: \"/etc/../x\" is not clean"},
		{func(s *Spec) { s.Files = []File{{Content: []byte("x"), Dst: "/"}} }, "files[0].dst: \"/\" is the image root"},
		{func(s *Spec) { s.Files = []File{{Src: "/a", Content: []byte("x"), Dst: "/a"}} }, "files[0]: give src or content"},
		{func(s *Spec) { s.Files = []File{{Src: "a", Dst: "/a"}} }, "files[0].src: \"a\" is not an absolute host path"},
		{func(s *Spec) { s.Files = []File{{Src: "/a", Dst: "/a", Mode: fs.ModeDir | 0o755}} }, "files[0].mode"},
		{func(s *Spec) { s.Executables = []Executable{{Src: "/bin/sh", Dst: ""}} }, "executables[0].dst: path is empty"},
		{func(s *Spec) { s.Symlinks = []Symlink{{Path: "/a", Target: ""}} }, "symlinks[0].target"},
		{func(s *Spec) { s.Dirs = []Dir{{Path: "/a/"}} }, "dirs[0].path: \"/a/\" is not clean"},
		{func(s *Spec) { s.Passwd = []string{"root:x:0:0"} }, "passwd[0]: \"root:x:0:0\" has 4 colon-separated fields, want 7"},
		{func(s *Spec) { s.Group = []string{"g:x:1:\nh:x:2:"} }, "group[0]: \"g:x:1:\\nh:x:2:\" spans lines"},
		{func(s *Spec) { s.Env = []string{"=x"} }, "env[0]: \"=x\" is not NAME=VALUE"},
		{func(s *Spec) { s.WorkingDir = "tmp" }, "workingDir: \"tmp\" is not absolute"},
	} {
		s := ok
		tc.mod(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, tc.want)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid spec: %v", err)
	}
	s := ok
	s.WorkingDir = "/"
	if err := s.Validate(); err != nil {
		t.Errorf("working dir /: %v", err)
	}
}

func TestEnv(t *testing.T) {
	if got := (Spec{Env: []string{"A=1"}}).env(); len(got) != 2 || got[0] != DefaultPath {
		t.Errorf("env without PATH = %v, want DefaultPath first", got)
	}
	if got := (Spec{Env: []string{"PATH=/x"}}).env(); len(got) != 1 || got[0] != "PATH=/x" {
		t.Errorf("env with PATH = %v", got)
	}
}
