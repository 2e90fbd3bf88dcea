package proxy

import (
	"bufio"
	"net"
	"net/http"
)

// statusWriter records the status and body size of a response for the
// access log and metrics. It passes Flush and Hijack (needed for upgraded
// connections) through to the server's writer.
//
// It also settles the Server header before the head goes out: none when
// server is "" (server-tokens off), else the upstream's if one was let
// through, else server.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
	server   string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	if h := w.Header(); w.server == "" {
		h.Del("Server")
	} else if h.Get("Server") == "" {
		h.Set("Server", w.server)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the client connection to ReverseProxy for an upgraded
// (101 Switching Protocols) exchange.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
