package nfnl

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

// TestTraceAndElementsInANamespace marks a ping with nftrace in a private namespace and
// reads the events, then dumps a verdict map.
func TestTraceAndElementsInANamespace(t *testing.T) {
	ns := netnstest.New(t, "nfnl")
	if out, err := ns.Run(t, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err, out)
	}
	script := `table inet tr {
		map m { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 10.96.0.1 . tcp . 80 : goto c } }
		chain c { }
		chain out { type filter hook output priority -300; icmp type echo-request meta nftrace set 1; }
		chain in { type filter hook input priority 0; icmp type echo-request counter drop; }
	}`
	if err := inns.Do(ns.Path, func() error {
		f, err := os.CreateTemp("", "nft")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		f.WriteString(script)
		f.Close()
		_, err = execOutputForTest("nft", "-f", f.Name())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var c *Conn
	if err := inns.Do(ns.Path, func() (err error) { c, err = DialTrace(); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, err := ns.Run(t, "ping", "-c1", "-W1", "127.0.0.1"); err == nil {
		t.Fatalf("the ping must be dropped: %s", out)
	}
	events, err := c.ReadTrace(500 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var drop *TraceEvent
	for i, e := range events {
		kinds = append(kinds, e.Chain+":"+e.Verdict.String())
		if e.Type == TraceRule && e.Verdict.Drops() {
			drop = &events[i]
		}
	}
	if drop == nil || drop.Table != "tr" || drop.Chain != "in" || drop.RuleHandle == 0 || drop.Family != unix.NFPROTO_INET || len(drop.Network) < 20 {
		t.Fatalf("no drop event from chain in: %v", kinds)
	}
	// The verdict map's element: key 10.96.0.1 . tcp . 80, each part padded to 4 bytes.
	var elems []Element
	if err := inns.Do(ns.Path, func() error {
		d, err := Dial()
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Elements(unix.NFPROTO_INET, "tr", "m", func(e Element) { elems = append(elems, e) })
	}); err != nil {
		t.Fatal(err)
	}
	if len(elems) != 1 || hex.EncodeToString(elems[0].Key) != "0a600001"+"06000000"+"00500000" || elems[0].Verdict.String() != "goto c" {
		t.Fatalf("elements: %+v", elems)
	}
	if !strings.HasPrefix(hex.EncodeToString(drop.Network), "45") {
		t.Fatalf("network header: %x", drop.Network)
	}
}
