package kubetest

import (
	"context"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"

	"k8s.io/client-go/rest"
)

// Link is one client's connection to the API server, under the test's control: Cut
// closes every connection the client has open and refuses new ones the way a dead
// server does (connection refused), until Restore. It also records the client's
// requests, so a test can tell a relist from a resumed watch.
type Link struct {
	mu       sync.Mutex
	down     bool
	conns    map[net.Conn]bool
	requests []Request
}

// Request is one request a client sent through its Link.
type Request struct {
	Method string
	Path   string // /api/v1/namespaces/ns/services
	Watch  bool   // ?watch=true (a streaming list asks for initial events too)
	// InitialEvents is a watch that starts with the whole collection (a streaming
	// list: sendInitialEvents=true).
	InitialEvents bool
}

// Lists reports whether r fetches a whole collection at path: a list, or a streaming
// list (a watch with initial events).
func (r Request) Lists(path string) bool {
	return r.Method == http.MethodGet && r.Path == path && (!r.Watch || r.InitialEvents)
}

func newLink() *Link { return &Link{conns: map[net.Conn]bool{}} }

func (l *Link) attach(cfg *rest.Config) {
	dialer := &net.Dialer{}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		l.mu.Lock()
		down := l.down
		l.mu.Unlock()
		if down {
			// What a client sees from a host whose server is gone; client-go's
			// reflector then retries its watch instead of listing again.
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.down {
			c.Close()
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		l.conns[c] = true
		return &trackedConn{Conn: c, l: l}, nil
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			q := req.URL.Query()
			l.mu.Lock()
			l.requests = append(l.requests, Request{Method: req.Method, Path: req.URL.Path,
				Watch: q.Get("watch") == "true" || q.Get("watch") == "1", InitialEvents: q.Get("sendInitialEvents") == "true"})
			l.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
}

// Cut ends the client's connections and refuses new ones until Restore.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = true
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]bool{}
}

// Restore lets the client connect again.
func (l *Link) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = false
}

// Requests returns the requests sent so far.
func (l *Link) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.requests...)
}

// Count returns how many requests so far satisfy f.
func (l *Link) Count(f func(Request) bool) int {
	n := 0
	for _, r := range l.Requests() {
		if f(r) {
			n++
		}
	}
	return n
}

type trackedConn struct {
	net.Conn
	l    *Link
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
