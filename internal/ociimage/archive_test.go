package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// listLayer reads a layer tar back as "type mode name [-> target] [size]" lines.
func listLayer(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q gname %q; want epoch, root, no names", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		line := fmt.Sprintf("%c %04o %s", h.Typeflag, h.Mode, h.Name)
		switch h.Typeflag {
		case tar.TypeSymlink:
			line += " -> " + h.Linkname
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" %q", data)
		}
		out = append(out, line)
	}
}

func TestWriteLayer(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "prog")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	entries := []Entry{
		{Path: "/bin", Kind: KindDir, Mode: 0o755},
		{Path: "/bin/prog", Kind: KindFile, Mode: 0o755, Src: src},
		{Path: "/bin/sh", Kind: KindSymlink, Mode: 0o777, Target: "prog"},
		{Path: "/etc", Kind: KindDir, Mode: 0o755},
		{Path: "/etc/motd", Kind: KindFile, Mode: 0o644, Content: []byte("hello\n")},
		{Path: "/tmp", Kind: KindDir, Mode: 0o777 | os.ModeSticky},
	}
	var a, b bytes.Buffer
	if err := writeLayer(&a, entries); err != nil {
		t.Fatal(err)
	}
	if err := writeLayer(&b, entries); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same entries gave different layer bytes")
	}
	want := []string{
		"5 0755 bin/",
		"0 0755 bin/prog \"#!/bin/sh\\necho hi\\n\"",
		"2 0777 bin/sh -> prog",
		"5 0755 etc/",
		"0 0644 etc/motd \"hello\\n\"",
		"5 1777 tmp/",
	}
	if got := listLayer(t, &a); !reflect.DeepEqual(got, want) {
		t.Errorf("layer:\n%q\nwant\n%q", got, want)
	}
}

func testSpec(t *testing.T) Spec {
	dir := t.TempDir()
	prog := filepath.Join(dir, "hello")
	if err := os.WriteFile(prog, []byte("static program"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Spec{
		Tags:       []string{"registry.k8s.io/e2e-test-images/agnhost:2.66.1", "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1"},
		Files:      []File{{Src: prog, Dst: "/hello"}, {Content: []byte("x\n"), Dst: "/etc/x"}},
		Symlinks:   []Symlink{{Path: "/hello-2", Target: "hello"}},
		Passwd:     []string{"root:x:0:0:root:/root:/bin/sh"},
		Entrypoint: []string{"/hello"},
		Cmd:        []string{"pause"},
		Env:        []string{"A=1"},
		WorkingDir: "/",
		User:       "0",
	}
}

func TestWriteIsReadableAndDeterministic(t *testing.T) {
	s := testSpec(t)
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	img, err := Write(p1, s)
	if err != nil {
		t.Fatal(err)
	}
	s2 := s
	s2.Tags = []string{s.Tags[1], s.Tags[0]} // tag order does not matter
	img2, err := Write(p2, s2)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := os.ReadFile(p1)
	d2, _ := os.ReadFile(p2)
	if sha256.Sum256(d1) != sha256.Sum256(d2) || !reflect.DeepEqual(img, img2) {
		t.Errorf("same inputs, different tarballs: %+v vs %+v", img, img2)
	}
	if img.Size != int64(len(d1)) {
		t.Errorf("Size = %d, file has %d bytes", img.Size, len(d1))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	// go-containerregistry reads it back as a docker archive, under each tag.
	for _, tagName := range s.Tags {
		tag, err := name.NewTag(tagName)
		if err != nil {
			t.Fatal(err)
		}
		ri, err := tarball.ImageFromPath(p1, &tag)
		if err != nil {
			t.Fatalf("reading %s back: %v", tagName, err)
		}
		cfgName, err := ri.ConfigName()
		if err != nil || cfgName.String() != img.ID {
			t.Errorf("config digest %v, %v; Write said %s", cfgName, err, img.ID)
		}
		cf, err := ri.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if !reflect.DeepEqual(c.Entrypoint, []string{"/hello"}) || !reflect.DeepEqual(c.Cmd, []string{"pause"}) ||
			!reflect.DeepEqual(c.Env, []string{DefaultPath, "A=1"}) || c.User != "0" || c.WorkingDir != "/" || cf.OS != "linux" {
			t.Errorf("config = %+v", c)
		}
		layers, err := ri.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("layers: %v, %v", layers, err)
		}
		diffID, err := layers[0].DiffID()
		if err != nil || diffID.String() != img.DiffID {
			t.Errorf("layer diff ID %v, %v; Write said %s", diffID, err, img.DiffID)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got := listLayer(t, rc)
		rc.Close()
		want := []string{
			"5 0755 etc/",
			"0 0644 etc/passwd \"root:x:0:0:root:/root:/bin/sh\\n\"",
			"0 0644 etc/x \"x\\n\"",
			"0 0755 hello \"static program\"",
			"2 0777 hello-2 -> hello",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("layer of %s:\n%q\nwant\n%q", tagName, got, want)
		}
	}
}

func TestEnsureReusesUnchangedInputs(t *testing.T) {
	s := testSpec(t)
	p := filepath.Join(t.TempDir(), "img.tar")
	img, built, err := Ensure(p, s)
	if err != nil || !built {
		t.Fatalf("first Ensure: built %v, %v", built, err)
	}
	again, built, err := Ensure(p, s)
	if err != nil || built || !reflect.DeepEqual(again, img) {
		t.Errorf("unchanged inputs: built %v, %v, %+v vs %+v", built, err, again, img)
	}
	s.Cmd = []string{"netexec"}
	changed, built, err := Ensure(p, s)
	if err != nil || !built || changed.ID == img.ID {
		t.Errorf("changed config: built %v, %v, ID %s (was %s)", built, err, changed.ID, img.ID)
	}
	// A host file rewritten with other bytes of the same size gets a new mtime.
	if err := os.WriteFile(s.Files[0].Src, []byte("static PROGRAM"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(s.Files[0].Src, time.Time{}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	later, built, err := Ensure(p, s)
	if err != nil || !built || later.DiffID == changed.DiffID {
		t.Errorf("changed host file: built %v, %v", built, err)
	}
}
