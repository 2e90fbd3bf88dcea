// Package namedns creates named network namespaces (bind-mounted under /run/netns, as
// `ip netns add` does) without moving the caller: the new namespace is made on a pinned
// thread that returns to its original namespace before it is released.
package namedns

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Create makes /run/netns/name with its loopback up.
func Create(name string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it rather than reuse a thread
		// stuck in the wrong namespace.
		runtime.LockOSThread()
		return fmt.Errorf("return to the original netns: %w", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}
