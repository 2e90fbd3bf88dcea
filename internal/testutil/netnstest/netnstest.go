// Package netnstest creates uniquely named network namespaces for tests that need real
// kernel state, and removes them when the test ends, even if it fails.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Require skips the test unless it runs as root and not in -short mode.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs network namespaces; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

// NS is a named network namespace made for one test.
type NS struct {
	Name string
	Path string
	H    *netlink.Handle
}

// New creates namespace "fjord-t-<tag>-<random>" with lo up. It is deleted at cleanup.
func New(t testing.TB, tag string) *NS {
	t.Helper()
	Require(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := "fjord-t-" + tag + "-" + hex.EncodeToString(b[:])
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("return to original netns: %v", err)
	}
	nh, err := netlink.NewHandleAt(h)
	h.Close()
	if err != nil {
		_ = netns.DeleteNamed(name)
		t.Fatal(err)
	}
	ns := &NS{Name: name, Path: "/run/netns/" + name, H: nh}
	t.Cleanup(func() {
		nh.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	lo, err := nh.LinkByName("lo")
	if err == nil {
		_ = nh.LinkSetUp(lo)
	}
	return ns
}

// Run runs a command inside the namespace (via `ip netns exec`) and returns its output.
func (n *NS) Run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...).CombinedOutput()
	return string(out), err
}
