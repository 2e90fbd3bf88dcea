package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestLogSinkGathersOnlyWhileRequestsOverlap(t *testing.T) {
	w := &syncBuffer{}
	s := newLogSink(w)
	// One request at a time: each line is written when it ends.
	s.begin()
	s.line([]byte("a\n"))
	if w.String() != "a\n" {
		t.Fatalf("lone request: log %q", w.String())
	}
	// Overlapping requests: lines wait until the last one ends.
	s.begin()
	s.begin()
	s.line([]byte("b\n"))
	if w.String() != "a\n" {
		t.Fatalf("line written while another request was in progress: %q", w.String())
	}
	s.line([]byte("c\n"))
	if w.String() != "a\nb\nc\n" {
		t.Fatalf("after the last request: %q", w.String())
	}
	// A long request (a WebSocket) does not hold lines back for long.
	s.begin()
	s.begin()
	s.line([]byte("d\n"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(w.String(), "d\n") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !strings.HasSuffix(w.String(), "d\n") {
		t.Fatalf("pending line never written: %q", w.String())
	}
	// Nor does volume: 32 KiB are written at once.
	big := strings.Repeat("x", maxLogPending) + "\n"
	s.begin()
	s.line([]byte(big))
	if !strings.HasSuffix(w.String(), big) {
		t.Error("a full buffer was not written")
	}
	s.line([]byte("e\n")) // the long request ends
	if !strings.HasSuffix(w.String(), "e\n") {
		t.Error("the last request's line was not written")
	}
}
