package ociimage

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/testutil/containerdtest"
)

// TestImportAndRunInContainerd loads a written image into a real containerd
// (Debian's 1.6) with `ctr images import` and runs its entrypoint and host
// executables copied with their libraries.
func TestImportAndRunInContainerd(t *testing.T) {
	containerdtest.Require(t)
	s := Spec{
		Tags:        []string{"fjord.test/ociimage:1", "fjord.test/ociimage:also"},
		Executables: []Executable{{Src: "/usr/bin/dash", Dst: "/bin/sh"}, {Src: "/usr/bin/curl", Dst: "/usr/bin/curl"}},
		Files:       []File{{Src: "/bin/busybox", Dst: "/bin/busybox"}},
		Symlinks:    []Symlink{{Path: "/bin/ls", Target: "busybox"}, {Path: "/bin/id", Target: "busybox"}, {Path: "/bin/cat", Target: "busybox"}},
		Dirs:        []Dir{{Path: "/tmp", Mode: 0o1777}},
		Passwd:      []string{"root:x:0:0:root:/root:/bin/sh", "someone:x:1000:1000::/:/bin/sh"},
		Group:       []string{"root:x:0:", "someone:x:1000:"},
		Entrypoint:  []string{"/bin/sh", "-c"},
		Cmd:         []string{"echo entrypoint ran as $(id -un) in $PWD"},
		WorkingDir:  "/tmp",
		User:        "someone",
	}
	path := filepath.Join(t.TempDir(), "img.tar")
	img, err := Write(path, s)
	if err != nil {
		t.Fatal(err)
	}
	in := containerdtest.Start(t, false)
	if out, err := in.Import(path); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("import: %s", out)
	}
	out, err := in.Ctr("images", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range s.Tags {
		if !strings.Contains(out, tag) {
			t.Errorf("containerd does not list %s:\n%s", tag, out)
		}
	}

	out, err = in.Run("fjord.test/ociimage:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != "entrypoint ran as someone in /tmp" {
		t.Errorf("entrypoint printed %q", got)
	}
	out, err = in.Run("fjord.test/ociimage:also", "/usr/bin/curl", "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "curl ") {
		t.Errorf("curl --version in the image: %q", out)
	}
	t.Logf("image %s, %d bytes", img.ID, img.Size)
}
