package nfnl

import (
	"encoding/hex"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testdata/trace-ping-dropped.hex holds the four NFT_MSG_TRACE messages this kernel
// sent for one ping in a namespace whose "inet tr" table marks echo requests in chain
// out (priority -300) and drops them in chain in: the marking rule (continue), the
// end of chain out, its policy (accept), and the drop in chain in.
func TestParseTraceRecorded(t *testing.T) {
	b, err := os.ReadFile("testdata/trace-ping-dropped.hex")
	if err != nil {
		t.Fatal(err)
	}
	var events []TraceEvent
	for _, line := range strings.Fields(string(b)) {
		raw, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := syscall.ParseNetlinkMessage(raw)
		if err != nil || len(msgs) != 1 || msgs[0].Header.Type != uint16(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE) {
			t.Fatalf("not a trace message: %v %v", msgs, err)
		}
		e, err := ParseTrace(msgs[0].Data[0], msgs[0].Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	want := []struct {
		typ     TraceType
		chain   string
		handle  bool
		verdict string
	}{
		{TraceRule, "out", true, "continue"},
		{TraceRule, "out", false, "continue"},
		{TracePolicy, "out", false, "accept"},
		{TraceRule, "in", true, "drop"},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events", len(events))
	}
	for i, w := range want {
		e := events[i]
		if e.Type != w.typ || e.Table != "tr" || e.Chain != w.chain || (e.RuleHandle != 0) != w.handle || e.Verdict.String() != w.verdict || e.Family != unix.NFPROTO_INET {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
	}
	drop := events[3]
	if drop.IIF == 0 || len(drop.Network) != 20 || drop.Network[9] != 1 || len(drop.Transport) < 8 || drop.Transport[0] != 8 {
		t.Errorf("drop event headers: iif %d net %x transport %x", drop.IIF, drop.Network, drop.Transport)
	}
	if events[0].OIF == 0 || events[0].ID != events[1].ID {
		t.Errorf("output events: %+v", events[:2])
	}
}

func TestParseTraceRejectsIncomplete(t *testing.T) {
	if _, err := ParseTrace(1, Attr(unix.NFTA_TRACE_TABLE, CString("x"))); err == nil {
		t.Fatal("a message without id and type must be refused")
	}
}

// FuzzParseTrace: no input makes the trace and element parsers panic.
func FuzzParseTrace(f *testing.F) {
	b, _ := os.ReadFile("testdata/trace-ping-dropped.hex")
	for _, line := range strings.Fields(string(b)) {
		if raw, err := hex.DecodeString(line); err == nil && len(raw) > 20 {
			f.Add(raw[20:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseTrace(1, b)
		ParseElements(b, func(Element) {})
		_ = ParseVerdict(b).String()
	})
}
