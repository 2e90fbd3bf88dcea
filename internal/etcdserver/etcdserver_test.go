package etcdserver

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSocketOwnerOnlyFromTheStart watches the socket's directory with
// inotify and looks at the socket the moment it is created: under a
// permissive umask (002, group-writable) it must already be its owner's
// alone, not only once the member is ready.
func TestSocketOwnerOnlyFromTheStart(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "etcd.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(sock), unix.IN_CREATE); err != nil {
		t.Fatalf("inotify watch: %v", err)
	}
	seen := make(chan os.FileMode, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				return
			}
			if fi, err := os.Lstat(sock); err == nil {
				seen <- fi.Mode().Perm()
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := Start(ctx, Config{DataDir: filepath.Join(dir, "data"), ClientSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	select {
	case mode := <-seen:
		if mode&0o077 != 0 {
			t.Errorf("the socket was created with mode %v: others could connect before it was narrowed", mode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no creation of the socket was seen")
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("socket mode %v once ready", fi.Mode().Perm())
	}
	if now := syscall.Umask(0o002); now != 0o002 {
		t.Errorf("Start left the umask at %#o", now)
	}
}
