package proxy

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// rawFileWriter writes access-log lines to a regular file with a raw
// write system call. Like rawIO, it exists to keep the runtime's sysmon
// thread asleep: an ordinary write wakes sysmon whenever the process was
// idle, which at low concurrency is on every request. A write to a
// regular file lands in the page cache; it can block only when the kernel
// throttles a writer of too much dirty data, and then it blocks the
// proxy's thread, as nginx's worker blocks on its access-log write. Any
// other writer (a pipe, a socket, a terminal) is written normally.
type rawFileWriter struct {
	rc      syscall.RawConn
	buf     []byte
	errno   syscall.Errno
	writeFn func(uintptr) bool
}

// logWriterFor returns w, or a rawFileWriter when w is a regular file.
func logWriterFor(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return w
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return w
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return w
	}
	r := &rawFileWriter{rc: rc}
	r.writeFn = r.write
	return r
}

func (r *rawFileWriter) write(fd uintptr) bool {
	for len(r.buf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)))
		switch e {
		case 0:
			r.buf = r.buf[n:]
		case syscall.EINTR:
		default:
			r.errno = e
			return true
		}
	}
	return true
}

// Write writes all of b; callers serialise calls (logSink.mu).
func (r *rawFileWriter) Write(b []byte) (int, error) {
	r.buf, r.errno = b, 0
	err := r.rc.Write(r.writeFn)
	n := len(b) - len(r.buf)
	r.buf = nil
	if err == nil && r.errno != 0 {
		err = &os.PathError{Op: "write", Path: "access log", Err: r.errno}
	}
	return n, err
}
