package proxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking socket with raw system calls run
// inside the runtime's network poller (syscall.RawConn), instead of
// net.Conn's Read and Write.
//
// Why: every ordinary system call passes through the scheduler's
// entersyscall, which wakes the runtime's sysmon thread whenever the
// process had gone idle. A proxy at low concurrency goes idle twice per
// request (waiting for the client, waiting for the upstream), so sysmon
// woke up and polled every 20 µs on every request: about 15 µs of CPU per
// request at one connection. A read or write of a non-blocking socket
// cannot block (the poller waits for readiness instead), so it is safe to
// skip entersyscall for it. Deadlines, Close and the poller behave
// exactly as for net.Conn, which is still used for everything else.
//
// One Read may run concurrently with one Write (as HTTP/2 and tunnels
// do); each has its own fields. Concurrent Reads (or Writes) are not
// supported, which no user here needs.
type rawIO struct {
	net.Conn
	rc     syscall.RawConn
	rd, wr rawOp
	pk     peekOp
}

// rawOp is the state of the Read or the Write in progress.
type rawOp struct {
	buf   []byte
	n     int
	errno syscall.Errno
	fn    func(uintptr) bool
}

// newRawIO wraps c when it is a socket that exposes its descriptor;
// otherwise it returns c.
func newRawIO(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{Conn: c, rc: rc}
	r.rd.fn, r.wr.fn, r.pk.fn = r.rd.read, r.wr.write, r.pk.peek
	return r
}

func (r *rawOp) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller, then try again
		}
		r.n, r.errno = int(n), e
		return true
	}
}

func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	op := &r.rd
	op.buf, op.n, op.errno = b, 0, 0
	err := r.rc.Read(op.fn)
	op.buf = nil
	switch {
	case err != nil:
		return 0, err
	case op.errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: op.errno}
	case op.n == 0:
		return 0, io.EOF
	}
	return op.n, nil
}

func (r *rawOp) write(fd uintptr) bool {
	for len(r.buf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)))
		switch e {
		case 0:
			r.n += int(n)
			r.buf = r.buf[n:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.errno = e
		return true
	}
	return true
}

func (r *rawIO) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	op := &r.wr
	op.buf, op.n, op.errno = b, 0, 0
	err := r.rc.Write(op.fn)
	op.buf = nil
	switch {
	case err != nil:
		return op.n, err
	case op.errno != 0:
		return op.n, &net.OpError{Op: "write", Net: "tcp", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: op.errno}
	}
	return op.n, nil
}

// peekOp is the state of a waitReadable in progress; its fn is bound
// once, so waiting allocates nothing.
type peekOp struct {
	n     uintptr
	errno syscall.Errno
	one   [1]byte
	fn    func(uintptr) bool
}

func (p *peekOp) peek(fd uintptr) bool {
	for {
		p.n, _, p.errno = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.one[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch p.errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller
		}
		return true
	}
}

// waitReadable blocks until the socket has a byte to read, the peer has
// closed it, or the read deadline passes, without reading: a MSG_PEEK of
// one byte inside the poller. It reports io.EOF when the peer closed. It
// must not run concurrently with Read.
func (r *rawIO) waitReadable() error {
	op := &r.pk
	op.n, op.errno = 0, 0
	err := r.rc.Read(op.fn)
	switch {
	case err != nil:
		return err
	case op.errno != 0:
		return &net.OpError{Op: "read", Net: "tcp", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: op.errno}
	case op.n == 0:
		return io.EOF
	}
	return nil
}

// pending reports whether the socket holds bytes not yet read, without blocking and
// without taking the descriptor's read lock, so it may run while another goroutine
// waits in waitReadable or Read.
func (r *rawIO) pending() bool {
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Control(func(fd uintptr) {
		var one [1]byte
		for {
			n, _, errno = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&one[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if errno != syscall.EINTR {
				return
			}
		}
	})
	return err == nil && errno == 0 && n > 0
}

// inputPending reports whether a client connection (plain or TLS over a rawIO) has
// bytes waiting that nobody has read yet: a request on its way in. Safe from any
// goroutine.
func inputPending(nc net.Conn) bool {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	r, ok := nc.(*rawIO)
	return ok && r.pending()
}
