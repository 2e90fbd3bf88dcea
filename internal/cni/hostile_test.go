package cni

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
)

func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	pod := newNetns(t, "pod")
	// A pod namespace that already has the interface name ADD wants.
	busy := newNetns(t, "busy")
	dummy := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}
	if err := handleIn(t, busy).LinkAdd(dummy); err != nil {
		t.Fatal(err)
	}
	plainFile := filepath.Join(t.TempDir(), "not-a-netns")
	os.WriteFile(plainFile, nil, 0o644)
	good := e.conf("1.1.0", nil)

	for _, tc := range []struct {
		name              string
		id, ifname, netns string
		conf              []byte
		code              uint
	}{
		{"netns missing", "c", "eth0", "/var/run/netns/fjord-t-cni-nope-" + randHex(4), good, types.ErrInvalidEnvironmentVariables},
		{"netns empty", "c", "eth0", "", good, types.ErrInvalidEnvironmentVariables},
		{"netns plain file", "c", "eth0", plainFile, good, types.ErrInvalidEnvironmentVariables},
		{"netns is a mount ns", "c", "eth0", "/proc/self/ns/mnt", good, types.ErrInvalidEnvironmentVariables},
		{"netns is /proc file", "c", "eth0", "/proc/version", good, types.ErrInvalidEnvironmentVariables},
		{"netns is the plugin's own", "c", "eth0", e.host.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname empty", "c", "", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname long", "c", strings.Repeat("e", 16), pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname slash", "c", "et/h0", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname space", "c", "eth 0", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname colon", "c", "eth0:1", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname dot", "c", ".", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"ifname dotdot", "c", "..", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"containerID empty", "", "eth0", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"containerID slash", "../x", "eth0", pod.path(), good, types.ErrInvalidEnvironmentVariables},
		{"malformed json", "c", "eth0", pod.path(), []byte(`{"cniVersion":`), types.ErrDecodingFailure},
		{"unknown version", "c", "eth0", pod.path(), e.conf("0.2.0", nil), types.ErrIncompatibleCNIVersion},
		{"bad mtu", "c", "eth0", pod.path(), e.conf("1.1.0", map[string]any{"mtu": 70000}), types.ErrInvalidNetworkConfig},
		{"ifname taken in pod", "c", "eth0", busy.path(), good, ErrLinkExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.run((*Plugin).Add, args(tc.id, tc.ifname, tc.netns, tc.conf))
			wantCode(t, err, tc.code)
			e.assertClean()
		})
	}
	if l, err := handleIn(t, busy).LinkByName("eth0"); err != nil || l.Type() != "bridge" {
		t.Fatalf("the pre-existing eth0 was touched: %v %v", l, err)
	}
}
