// Package netnstest creates uniquely named network namespaces for tests that need real
// kernel state, and removes them when the test ends, even if it fails.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fjord-net/fjord/internal/namedns"
)

// Require skips the test in -short mode (`make test-unit`) and fails it, loudly, when
// it does not run as root: a kernel test that cannot run must not pass.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs network namespaces; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root for network namespaces: run the suite as root (make test), or use -short (make test-unit) to leave kernel tests out")
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
	if err := namedns.Create(name); err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		_ = netns.DeleteNamed(name)
		t.Fatal(err)
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
	return ns
}

// Run runs a command inside the namespace (via `ip netns exec`) and returns its output.
func (n *NS) Run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...).CombinedOutput()
	return string(out), err
}
