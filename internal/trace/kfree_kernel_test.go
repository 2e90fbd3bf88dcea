package trace

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// TestDropWatcherSeesAClosedPort connects to a closed port in a private namespace: the
// SYN is freed with reason NO_SOCKET, in that namespace; other traffic is not reported.
func TestDropWatcherSeesAClosedPort(t *testing.T) {
	ns := netnstest.New(t, "kfree")
	if out, err := ns.Run(t, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err, out)
	}
	const port = 47011
	w, err := WatchDrops(Match{Port: port, ICMPID: 1, VXLANPort: 8472})
	if err != nil {
		t.Fatal(err)
	}
	err = inns.Do(ns.Path, func() error {
		// Noise first: a closed port nobody traces.
		_, _ = net.DialTimeout("tcp", "127.0.0.1:47012", time.Second)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, Timeout: time.Second}
		_, err := d.Dial("tcp", "127.0.0.1:1")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []DropEvent
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && len(got) == 0; time.Sleep(20 * time.Millisecond) {
		got = w.Events()
	}
	fi, _ := os.Stat(ns.Path)
	ino := uint32(fi.Sys().(*syscall.Stat_t).Ino)
	if len(got) == 0 {
		t.Fatal("no drop event")
	}
	e := got[0]
	if w.ReasonName(e.Reason) != "NO_SOCKET" || e.NetnsInum != ino || e.Ifindex == 0 || e.Location == 0 || e.Packet[9] != 6 {
		t.Fatalf("event %+v reason %s, want NO_SOCKET in netns %d", e, w.ReasonName(e.Reason), ino)
	}
	for _, e := range got {
		if sport := int(e.Packet[20])<<8 | int(e.Packet[21]); sport != port {
			t.Fatalf("an untraced packet was reported: %+v", e)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing stays loaded (the kernel frees a program after an RCU grace period).
	for end := time.Now().Add(5 * time.Second); loadedPrograms(t)[ProgramName]; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the BPF program is still loaded 5s after Close")
		}
	}
}

func loadedPrograms(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil {
			out[info.Name] = true
		}
		p.Close()
	}
}
