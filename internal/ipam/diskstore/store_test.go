package diskstore_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fjord-net/fjord/internal/ipam"
	"github.com/fjord-net/fjord/internal/ipam/diskstore"
)

var pool = func() ipam.Pool {
	p, err := ipam.NewPool(netip.MustParsePrefix("10.9.0.0/22"), netip.MustParseAddr("10.9.0.1"))
	if err != nil {
		panic(err)
	}
	return p
}()

// allocate opens its own Store (its own lock file descriptor, as a separate plugin
// process would) and allocates one address.
func allocate(dir string, o ipam.Owner) (netip.Addr, error) {
	s, err := diskstore.Open(dir)
	if err != nil {
		return netip.Addr{}, err
	}
	defer s.Close()
	ip, _, err := ipam.Allocate(s, pool, o)
	return ip, err
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := ipam.Owner{ContainerID: "abc", IfName: "eth0"}
	ip, err := allocate(dir, o)
	if err != nil || ip.String() != "10.9.0.2" {
		t.Fatalf("allocate = %v %v", ip, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "10.9.0.2"))
	if string(b) != "abc\neth0\n" {
		t.Fatalf("allocation file = %q", b)
	}
	again, err := allocate(dir, o)
	if err != nil || again != ip {
		t.Fatalf("idempotent allocate = %v %v, want %v", again, err, ip)
	}
	// A host-local style file ("\r\n") is read too.
	os.WriteFile(filepath.Join(dir, "10.9.0.9"), []byte("hl\r\neth1"), 0o644)
	s, _ := diskstore.Open(dir)
	defer s.Close()
	if got, ok, _ := ipam.Lookup(s, pool, ipam.Owner{ContainerID: "hl", IfName: "eth1"}); !ok || got.String() != "10.9.0.9" {
		t.Fatalf("Lookup host-local file = %v %v", got, ok)
	}
	if freed, err := ipam.Release(s, o); err != nil || len(freed) != 1 {
		t.Fatalf("Release = %v %v", freed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "10.9.0.2")); !os.IsNotExist(err) {
		t.Fatal("release left the file")
	}
	if s.Lock() != nil || s.Release(netip.MustParseAddr("10.9.0.200")) != nil || s.Unlock() != nil {
		t.Fatal("releasing a free address must not fail")
	}
}

func checkUnique(t *testing.T, ips []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("address %s handed out twice", ip)
		}
		seen[ip] = true
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	dir := t.TempDir()
	const n = 64
	ips := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ip, err := allocate(dir, ipam.Owner{ContainerID: fmt.Sprintf("g%d", i), IfName: "eth0"})
			if err != nil {
				t.Error(err)
			}
			ips[i] = ip.String()
		})
	}
	wg.Wait()
	checkUnique(t, ips)
}

// TestMain runs the child process of TestConcurrentProcesses when asked to:
// it allocates 8 addresses in $FJORD_IPAM_HELPER_DIR and prints them.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FJORD_IPAM_HELPER_DIR"); dir != "" {
		id := os.Getenv("FJORD_IPAM_HELPER_ID")
		for i := range 8 {
			ip, err := allocate(dir, ipam.Owner{ContainerID: id + "-" + strconv.Itoa(i), IfName: "eth0"})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Println("IP", ip)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	const procs = 8
	cmds := make([]*exec.Cmd, procs)
	outs := make([][]byte, procs)
	var wg sync.WaitGroup
	for i := range procs {
		cmd := exec.Command(os.Args[0]) // TestMain turns it into the helper
		cmd.Env = append(os.Environ(), "FJORD_IPAM_HELPER_DIR="+dir, "FJORD_IPAM_HELPER_ID=p"+strconv.Itoa(i))
		cmds[i] = cmd
		wg.Go(func() {
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("helper %d: %v\n%s", i, err, out)
			}
			outs[i] = out
		})
	}
	wg.Wait()
	var ips []string
	for _, out := range outs {
		var ip string
		for _, line := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(line, "IP %s", &ip); err == nil {
				ips = append(ips, ip)
			}
		}
	}
	if len(ips) != procs*8 {
		t.Fatalf("got %d addresses, want %d", len(ips), procs*8)
	}
	checkUnique(t, ips)
}

// The pod a runtime names is recorded as a third line and read back; it does not
// change who owns the address.
func TestPodIsRecorded(t *testing.T) {
	dir := t.TempDir()
	s, err := diskstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := ipam.Owner{ContainerID: "abc", IfName: "eth0"}
	ip, _, err := ipam.AllocateFor(s, pool, o, "default/web-1")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ip.String())); string(b) != "abc\neth0\ndefault/web-1\n" {
		t.Fatalf("allocation file = %q", b)
	}
	if again, _, err := ipam.AllocateFor(s, pool, o, "default/web-1"); err != nil || again != ip {
		t.Fatalf("a retried ADD got %v %v, want %v", again, err, ip)
	}
	all, err := s.List()
	if err != nil || len(all) != 1 || all[0].Pod != "default/web-1" || all[0].Owner != o {
		t.Fatalf("List = %+v %v", all, err)
	}
}
