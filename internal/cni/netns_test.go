package cni

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fjord-net/fjord/internal/nodestate"
)

// requireRoot skips tests that need real namespaces in -short mode and fails them
// when not run as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs network namespaces; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root for network namespaces: run the suite as root (make test), or use -short (make test-unit)")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testNS is a named network namespace the test created; it is removed in Cleanup.
type testNS struct {
	name string
	ns.NetNS
}

func (n testNS) path() string { return "/var/run/netns/" + n.name }

// newNetns creates fjord-t-cni-<role>-<random> with lo up.
func newNetns(t *testing.T, role string) testNS {
	t.Helper()
	name := fmt.Sprintf("fjord-t-cni-%s-%s", role, randHex(4))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	n := testNS{name: name}
	t.Cleanup(func() {
		if n.NetNS != nil {
			n.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("No such file")) {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	var err error
	if n.NetNS, err = ns.GetNS(n.path()); err != nil {
		t.Fatal(err)
	}
	h := handleIn(t, n)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	return n
}

// handleIn opens a netlink handle bound to n, closed in Cleanup.
func handleIn(t *testing.T, n ns.NetNS) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(n.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// env is a "host" namespace the plugin runs in, with its node.json and data dir.
type env struct {
	t       *testing.T
	host    testNS
	runDir  string
	dataDir string
	node    nodestate.NodeNetwork
}

func newEnv(t *testing.T) *env {
	requireRoot(t)
	e := &env{t: t, host: newNetns(t, "host"), runDir: t.TempDir(), dataDir: t.TempDir()}
	e.node = nodestate.NodeNetwork{
		Node: "n1", Mode: "routed", MTU: 1450,
		PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Gateway: netip.MustParseAddr("10.244.1.1"),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
	}
	if err := nodestate.Write(e.runDir, e.node); err != nil {
		t.Fatal(err)
	}
	return e
}

// conf renders a plugin config; extra keys are merged in.
func (e *env) conf(ver string, extra map[string]any) []byte {
	c := map[string]any{"cniVersion": ver, "name": "fjord-test", "type": "fjord", "runDir": e.runDir, "dataDir": e.dataDir}
	for k, v := range extra {
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// run runs cmd inside the host namespace and returns its output and error.
func (e *env) run(cmd func(*Plugin, *skel.CmdArgs) error, args *skel.CmdArgs) ([]byte, error) {
	var out bytes.Buffer
	p := &Plugin{Stdout: &out}
	err := e.host.Do(func(ns.NetNS) error { return cmd(p, args) })
	return out.Bytes(), err
}

func args(id, ifname, netnsPath string, conf []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, IfName: ifname, Netns: netnsPath, StdinData: conf}
}

// add runs ADD and parses its result at ver.
func (e *env) add(ver string, a *skel.CmdArgs) (*current.Result, []byte) {
	e.t.Helper()
	out, err := e.run((*Plugin).Add, a)
	if err != nil {
		e.t.Fatalf("ADD %s: %v", a.ContainerID, err)
	}
	r, err := version.NewResult(ver, out)
	if err != nil {
		e.t.Fatalf("result at %s does not parse: %v\n%s", ver, err, out)
	}
	if r.Version() != ver {
		e.t.Fatalf("result version %s, want %s", r.Version(), ver)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, out
}

// wantCode asserts err is a spec error with code.
func wantCode(t *testing.T, err error, code uint) {
	t.Helper()
	te, ok := err.(*types.Error)
	if !ok || te.Code != code {
		t.Fatalf("got error %#v, want code %d", err, code)
	}
}

// hostVeths lists fj* interfaces in the host namespace.
func (e *env) hostVeths() []string {
	links, err := handleIn(e.t, e.host).LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, hostVethPrefix) {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// allocations lists the allocation files of network name.
func (e *env) allocations(name string) []string {
	entries, _ := os.ReadDir(filepath.Join(e.dataDir, name))
	var out []string
	for _, en := range entries {
		if _, err := netip.ParseAddr(en.Name()); err == nil {
			out = append(out, en.Name())
		}
	}
	return out
}

// assertClean fails unless the host has no fj interfaces and no allocations.
func (e *env) assertClean() {
	e.t.Helper()
	if v := e.hostVeths(); len(v) != 0 {
		e.t.Errorf("host interfaces left behind: %v", v)
	}
	if a := e.allocations("fjord-test"); len(a) != 0 {
		e.t.Errorf("allocations left behind: %v", a)
	}
}
