package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The backends of every proxy are this program in server mode (`-serve :8080`): an
// HTTP server that answers "pod=NAME client=ADDR" like `fjord echo`, on a listener with
// TCP_DEFER_ACCEPT. A connect that sends no data (the connect-time test) then
// completes in the kernel without waking the server process: on this 2-vCPU VM,
// waking a process whose thread sleeps on the other vCPU added 50-100 µs to a
// connect, depending only on where the backend's thread happened to sleep, which
// made the results depend on the backend process instead of the proxy. Requests
// with data (the change test) are served normally.
var (
	flagServe    = flag.String("serve", "", "internal: run as a backend HTTP server on this address")
	flagServePod = flag.String("serve-pod", "", "internal: the pod name a backend reports (default $POD_NAME)")
)

const deferAcceptSecs = 30

func serve(addr, name string) int {
	if name == "" {
		name = os.Getenv("POD_NAME")
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSecs)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-services -serve:", err)
		return 1
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "pod=%s client=%s\n", name, r.RemoteAddr)
	})}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Fprintf(os.Stderr, "bench-services backend %s on %s (TCP_DEFER_ACCEPT %d s)\n", name, addr, deferAcceptSecs)
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "bench-services -serve:", err)
		return 1
	}
	return 0
}
