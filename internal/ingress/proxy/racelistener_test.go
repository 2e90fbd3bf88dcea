package proxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// raceListener makes the keep-alive race happen on purpose: when a
// request arrives on a connection that has already answered one, the
// connection is closed without reading it, with probability p, exactly
// as if the server had closed the idle connection while the request was
// on the wire.
type raceListener struct {
	net.Listener
	p   float64
	mu  sync.Mutex
	rng *rand.Rand
}

func newRaceListener(l net.Listener, p float64) *raceListener {
	return &raceListener{Listener: l, p: p, rng: rand.New(rand.NewPCG(1, 2))}
}

func (l *raceListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &raceConn{Conn: c, l: l}, nil
}

func (l *raceListener) coin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Float64() < l.p
}

type raceConn struct {
	net.Conn
	l         *raceListener
	mu        sync.Mutex
	lastWrite time.Time
}

func (c *raceConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	c.lastWrite = time.Now()
	c.mu.Unlock()
	return n, err
}

func (c *raceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	answered := !c.lastWrite.IsZero()
	c.mu.Unlock()
	if n > 0 && answered && c.l.coin() {
		// Reset rather than FIN: the request hit a closed socket.
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return n, err
}
