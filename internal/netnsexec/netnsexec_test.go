package netnsexec

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// The test binary re-executes itself as the helper: Exec replaces the process.
func TestMain(m *testing.M) {
	if ns := os.Getenv("NETNSEXEC_HELPER_NS"); ns != "" {
		err := ExecWith(ns, strings.Fields(os.Getenv("NETNSEXEC_HELPER_CMD")), nil, Options{Sysfs: os.Getenv("NETNSEXEC_HELPER_SYSFS") == "1"})
		os.Stderr.WriteString("exec: " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func helper(t *testing.T, ns string, sysfs bool, cmd string) (string, error) {
	t.Helper()
	c := exec.Command(os.Args[0])
	flag := "0"
	if sysfs {
		flag = "1"
	}
	c.Env = append(os.Environ(), "NETNSEXEC_HELPER_NS="+ns, "NETNSEXEC_HELPER_CMD="+cmd, "NETNSEXEC_HELPER_SYSFS="+flag)
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestSysfsShowsTheNamespacesInterfaces gives a namespace an interface with an unusual
// MTU: with Sysfs the command reads it from /sys, and the host's /sys is untouched.
func TestSysfsShowsTheNamespacesInterfaces(t *testing.T) {
	ns := netnstest.New(t, "nsx")
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "fjtdummy0", MTU: 1234}, PeerName: "fjtdummy1"}
	if err := ns.H.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	out, err := helper(t, ns.Path, true, "cat /sys/class/net/fjtdummy0/mtu")
	if err != nil || out != "1234" {
		t.Fatalf("with Sysfs: %q, %v; want 1234", out, err)
	}
	// Without it, /sys is the host's: the namespace's interface is not there.
	if out, err := helper(t, ns.Path, false, "cat /sys/class/net/fjtdummy0/mtu"); err == nil {
		t.Fatalf("without Sysfs the host's /sys must not show the namespace's interface, got %q", out)
	}
	// The host's own /sys is unchanged after the command ran.
	if _, err := os.Stat("/sys/class/net/fjtdummy0"); err == nil {
		t.Fatal("the namespace's interface leaked into the host's /sys")
	}
	if _, err := os.Stat("/sys/class/net/lo"); err != nil {
		t.Fatalf("host /sys damaged: %v", err)
	}
	// The command really runs in the namespace.
	if out, err := helper(t, ns.Path, true, "ip -o link show fjtdummy0"); err != nil || !strings.Contains(out, "mtu 1234") {
		t.Fatalf("ip link in the namespace: %q %v", out, err)
	}
}

func TestRefusesWhatIsNotANamespace(t *testing.T) {
	netnstest.Require(t)
	if out, err := helper(t, "/etc/hostname", true, "true"); err == nil || !strings.Contains(out, "not a network namespace") {
		t.Fatalf("want a refusal naming the path, got %q %v", out, err)
	}
}
