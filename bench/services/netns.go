package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"

	"golang.org/x/sys/unix"
)

// nsWorker is a benchkit.NSWorker with this program's jobs as methods.
type nsWorker struct{ *benchkit.NSWorker }

func newNSWorker(name string) (*nsWorker, error) {
	w, err := benchkit.NewNSWorker(name)
	if err != nil {
		return nil, err
	}
	return &nsWorker{w}, nil
}

// tcpSocket makes a non-blocking TCP socket that resets on close (SO_LINGER 0), so a
// benchmark of thousands of connects leaves no TIME_WAIT behind.
func tcpSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func sockaddr(a netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
}

// startConnect begins a connect; done is true when it finished at once (err says how).
func startConnect(fd int, a netip.AddrPort) (done bool, err error) {
	err = unix.Connect(fd, sockaddr(a))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINPROGRESS):
		return false, nil
	default:
		return true, err
	}
}

// finishConnect waits (at most until deadline) for a started connect to complete.
func finishConnect(fd int, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		ms := int(left.Milliseconds()) + 1
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			continue // the deadline check above ends it
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soerr != 0 {
			return unix.Errno(soerr)
		}
		return nil
	}
}

// connectTime times one TCP connect (SYN out to SYN-ACK back) from the worker's
// namespace: the first-packet round trip through whatever proxy is in the path.
func (w *nsWorker) connectTime(a netip.AddrPort, timeout time.Duration) (d time.Duration, err error) {
	w.Run(func() {
		var fd int
		if fd, err = tcpSocket(); err != nil {
			return
		}
		defer unix.Close(fd)
		t0 := time.Now()
		done, cerr := startConnect(fd, a)
		if !done {
			cerr = finishConnect(fd, t0.Add(timeout))
		}
		d, err = time.Since(t0), cerr
	})
	return d, err
}

// httpIdentity connects, sends GET / and returns the echo pod's name from the reply
// ("pod=NAME ..." in fjord echo's text format).
func (w *nsWorker) httpIdentity(a netip.AddrPort, timeout time.Duration) (string, error) {
	var fd int
	var err error
	w.Run(func() { fd, err = tcpSocket() })
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	done, cerr := startConnect(fd, a)
	if !done {
		cerr = finishConnect(fd, deadline)
	}
	if cerr != nil {
		unix.Close(fd)
		return "", cerr
	}
	f := os.NewFile(uintptr(fd), "probe")
	conn, err := net.FileConn(f) // dups the descriptor
	f.Close()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: bench\r\n\r\n"); err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(conn, 8192))
	if err != nil && len(body) == 0 {
		return "", err
	}
	s := string(body)
	i := strings.Index(s, "pod=")
	if i < 0 {
		return "", fmt.Errorf("no identity in the reply: %.200q", s)
	}
	id := s[i+4:]
	if j := strings.IndexAny(id, " \r\n"); j >= 0 {
		id = id[:j]
	}
	return id, nil
}

// waitServing polls the target with overlapping connects, a new one every 10 ms (each
// given up after 500 ms), and returns when one completes: the time the proxy's rules
// for the target started to work, to within about 10 ms, whether unprogrammed
// packets are dropped or rejected. alive is checked between attempts; deadline bounds
// the wait.
func (w *nsWorker) waitServing(ctx context.Context, target netip.AddrPort, deadline time.Time, alive func() error) (time.Time, error) {
	type attempt struct {
		fd   int
		sent time.Time
	}
	var inflight []attempt
	defer func() {
		for _, a := range inflight {
			unix.Close(a.fd)
		}
	}()
	var lastErr error
	var got time.Time
	for got.IsZero() {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%w (last connect error: %v)", errTimeout, lastErr)
		}
		if err := alive(); err != nil {
			return time.Time{}, err
		}
		w.Run(func() {
			fd, err := tcpSocket()
			if err != nil {
				lastErr = err
				return
			}
			now := time.Now()
			done, cerr := startConnect(fd, target)
			switch {
			case done && cerr == nil:
				got = time.Now()
				unix.Close(fd)
			case done:
				lastErr = cerr
				unix.Close(fd)
			default:
				inflight = append(inflight, attempt{fd, now})
			}
		})
		if !got.IsZero() {
			break
		}
		// Wait up to 10 ms for any attempt in flight to complete.
		end := time.Now().Add(10 * time.Millisecond)
		for got.IsZero() && len(inflight) > 0 {
			left := time.Until(end)
			if left <= 0 {
				break
			}
			pfds := make([]unix.PollFd, len(inflight))
			for i, a := range inflight {
				pfds[i] = unix.PollFd{Fd: int32(a.fd), Events: unix.POLLOUT}
			}
			n, err := unix.Poll(pfds, int(left.Milliseconds())+1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return time.Time{}, err
			}
			if n == 0 {
				break
			}
			now := time.Now()
			keep := inflight[:0]
			for i, a := range inflight {
				if pfds[i].Revents == 0 {
					keep = append(keep, a)
					continue
				}
				soerr, _ := unix.GetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				if soerr == 0 && got.IsZero() {
					got = now
				} else if soerr != 0 {
					lastErr = unix.Errno(soerr)
				}
				unix.Close(a.fd)
			}
			inflight = keep
		}
		if got.IsZero() && len(inflight) == 0 {
			time.Sleep(time.Until(end))
		}
		// Give up on attempts older than 500 ms: their SYN was dropped.
		keep := inflight[:0]
		for _, a := range inflight {
			if time.Since(a.sent) > 500*time.Millisecond {
				unix.Close(a.fd)
				lastErr = unix.ETIMEDOUT
				continue
			}
			keep = append(keep, a)
		}
		inflight = keep
	}
	return got, nil
}

var errTimeout = errors.New("timed out")

// nsExists reports whether a named network namespace exists.
func nsExists(name string) bool { return fileExists("/run/netns/" + name) }
