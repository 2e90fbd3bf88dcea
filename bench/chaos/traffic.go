package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// The kinds of traffic, in report order.
const (
	classPod       = "pod to pod"
	classClusterIP = "ClusterIP TCP"
	classUDP       = "ClusterIP UDP"
	classNodePort  = "NodePort"
	classIngress   = "ingress"
)

var classes = []string{classPod, classClusterIP, classUDP, classNodePort, classIngress}

// stream is one client sending one kind of request on a fixed schedule.
type stream struct {
	Class string
	Name  string // e.g. "n1 → echo-n2"
	// From is the client's node ("host" outside the cluster); Via the node the request
	// must reach first (a pod's node, a NodePort's node, the ingress's), "" for a
	// ClusterIP (answered where the client is).
	From, Via string
	// Target is the node whose pod must answer, "" for any.
	Target  string
	attempt func(ctx context.Context, seq int) error

	mu   sync.Mutex
	recs []record
}

// record is one request: when it was due, and how it ended.
type record struct {
	At  time.Time
	Dur time.Duration // how long it took
	Err string        // "" = answered
}

// involves reports whether the stream cannot work while node is cut off.
func (s *stream) involves(node string) bool {
	return s.From == node || s.Via == node || s.Target == node
}

func (s *stream) add(r record) {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
}

// between returns the stream's requests due in [from, to).
func (s *stream) between(from, to time.Time) []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []record
	for _, r := range s.recs {
		if !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// traffic runs every stream until stopped.
type traffic struct {
	streams []*stream
	period  time.Duration
	timeout time.Duration
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// maxInFlight bounds the requests one stream has outstanding; a request due while the
// stream is at the bound counts as lost ("backlog").
const maxInFlight = 64

func (t *traffic) start(ctx context.Context) {
	ctx, t.cancel = context.WithCancel(ctx)
	for _, s := range t.streams {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			sem := make(chan struct{}, maxInFlight)
			tick := time.NewTicker(t.period)
			defer tick.Stop()
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					return
				case due := <-tick.C:
					select {
					case sem <- struct{}{}:
					default:
						s.add(record{At: due, Err: "backlog"})
						continue
					}
					inflight.Add(1)
					go func() {
						defer inflight.Done()
						defer func() { <-sem }()
						rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
						defer cancel()
						start := time.Now()
						err := s.attempt(rctx, seq)
						r := record{At: due, Dur: time.Since(start)}
						if err != nil {
							r.Err = classify(err)
						}
						s.add(r)
					}()
				}
			}
		}()
	}
}

func (t *traffic) stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
}

// dialError marks a failure to connect (as opposed to one after connecting).
type dialError struct {
	err  error
	took time.Duration // in connect (a slow start of the dial is the client's own delay)
}

func (e dialError) Error() string { return fmt.Sprintf("connect (%v): %v", e.took, e.err) }
func (e dialError) Unwrap() error { return e.err }

// classify names an error by what a client would see.
func classify(err error) string {
	var de dialError
	if errors.As(err, &de) {
		return "connect " + classify(de.err)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	}
	var se statusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d", int(se))
	}
	return "error"
}

type statusError int

func (e statusError) Error() string { return fmt.Sprintf("status %d", int(e)) }

// dialer opens connections from one network namespace (nil handle: this process's).
type dialer struct {
	ns   netns.NsHandle
	root netns.NsHandle
	in   bool
}

var (
	rootOnce sync.Once
	rootNS   netns.NsHandle
	rootErr  error
)

// nsDialer dials from the named namespace (/run/netns/NAME).
func nsDialer(name string) (*dialer, error) {
	rootOnce.Do(func() { rootNS, rootErr = netns.GetFromPid(os.Getpid()) })
	if rootErr != nil {
		return nil, rootErr
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	return &dialer{ns: h, root: rootNS, in: true}, nil
}

// hostDialer dials from the root namespace (the host, outside the cluster).
func hostDialer() *dialer { return &dialer{} }

// dial creates the socket inside the namespace (a socket belongs to the namespace it
// was made in, whichever thread uses it later) and connects it. The thread is locked
// while it sits in the namespace, and handed back only once it is home again.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	if !d.in {
		return nd.DialContext(ctx, network, addr)
	}
	runtime.LockOSThread()
	if err := netns.Set(d.ns); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, err := nd.DialContext(ctx, network, addr)
	if netns.Set(d.root) == nil {
		runtime.UnlockOSThread()
	} // else: the thread stays locked and ends with this goroutine
	return c, err
}

// httpGet sends one GET on a new connection and wants 200 with an echo pod's answer.
// want (if not "") must appear in the answer (the pod that must reply).
func httpGet(d *dialer, addr, host, want string) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		start := time.Now()
		c, err := d.dial(ctx, "tcp", addr)
		if err != nil {
			return dialError{err, time.Since(start)}
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: fjord-chaos\r\nConnection: close\r\n\r\n", host); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(c, 64<<10))
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return io.EOF
		}
		var code int
		if _, err := fmt.Sscanf(string(b), "HTTP/1.1 %d", &code); err != nil {
			return fmt.Errorf("bad answer %q", trim(b))
		}
		if code != 200 {
			return statusError(code)
		}
		if !bytes.Contains(b, []byte("pod=")) || (want != "" && !bytes.Contains(b, []byte("pod="+want+" "))) {
			return fmt.Errorf("unexpected answer %q", trim(b))
		}
		return nil
	}
}

// udpEcho sends one datagram from a new socket and wants the echo's reply.
func udpEcho(d *dialer, addr string) func(context.Context, int) error {
	return func(ctx context.Context, seq int) error {
		c, err := d.dial(ctx, "udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		msg := fmt.Sprintf("chaos-%d", seq)
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if !strings.HasSuffix(string(buf[:n]), "payload="+msg) {
			return fmt.Errorf("unexpected reply %q", trim(buf[:n]))
		}
		return nil
	}
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// tally is what a set of streams saw in a window.
type tally struct {
	Sent, Lost int
	Kinds      map[string]int // failures by kind
	First      time.Time      // first failure (zero: none)
	Last       time.Time      // last failure
}

func (t *tally) add(r record) {
	t.Sent++
	if r.Err == "" {
		return
	}
	t.Lost++
	if t.Kinds == nil {
		t.Kinds = map[string]int{}
	}
	t.Kinds[r.Err]++
	if t.First.IsZero() || r.At.Before(t.First) {
		t.First = r.At
	}
	if r.At.After(t.Last) {
		t.Last = r.At
	}
}

func (t *tally) merge(o tally) {
	t.Sent += o.Sent
	t.Lost += o.Lost
	for k, n := range o.Kinds {
		if t.Kinds == nil {
			t.Kinds = map[string]int{}
		}
		t.Kinds[k] += n
	}
	if !o.First.IsZero() && (t.First.IsZero() || o.First.Before(t.First)) {
		t.First = o.First
	}
	if o.Last.After(t.Last) {
		t.Last = o.Last
	}
}

// kinds renders the failure kinds, most frequent first.
func (t tally) kinds() string {
	type kv struct {
		k string
		n int
	}
	var list []kv
	for k, n := range t.Kinds {
		list = append(list, kv{k, n})
	}
	slices.SortFunc(list, func(a, b kv) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%d %s", e.n, e.k))
	}
	return strings.Join(parts, ", ")
}

// window tallies, per class, the requests due in [from, to) of the streams keep selects.
func (t *traffic) window(from, to time.Time, keep func(*stream) bool) map[string]tally {
	out := map[string]tally{}
	for _, s := range t.streams {
		if keep != nil && !keep(s) {
			continue
		}
		tl := out[s.Class]
		for _, r := range s.between(from, to) {
			tl.add(r)
		}
		out[s.Class] = tl
	}
	return out
}
