package proxy

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logSink writes access-log lines. While other requests are still in
// progress it gathers lines and writes them together, saving one system
// call per request under load. It writes as soon as the proxy has no
// request in progress, when 32 KiB are pending, and at the latest
// maxLogDelay after the first pending line, so a line never waits long
// and a proxy serving one request at a time writes each line at once,
// as nginx without a log buffer does.
type logSink struct {
	w       io.Writer
	active  atomic.Int64 // requests begun and not yet logged
	mu      sync.Mutex
	pending []byte
	timer   *time.Timer // armed while lines are pending
}

const (
	maxLogPending = 32 << 10
	maxLogDelay   = 5 * time.Millisecond
)

func newLogSink(w io.Writer) *logSink {
	return &logSink{w: w, pending: make([]byte, 0, maxLogPending+4096)}
}

// begin counts a request that will call line once when it ends.
func (s *logSink) begin() { s.active.Add(1) }

// line logs one finished request's line (with its newline).
func (s *logSink) line(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := s.active.Add(-1)
	if left <= 0 && len(s.pending) == 0 {
		s.w.Write(b)
		return
	}
	s.pending = append(s.pending, b...)
	switch {
	case left <= 0 || len(s.pending) >= maxLogPending:
		s.flushLocked()
	case s.timer == nil:
		s.timer = time.AfterFunc(maxLogDelay, s.flush)
	}
}

// flush writes what is pending.
func (s *logSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

func (s *logSink) flushLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if len(s.pending) > 0 {
		s.w.Write(s.pending)
		s.pending = s.pending[:0]
	}
}
