// Package echo is a small server for lab pods: HTTP, a TCP echo and UDP, each answering with the pod's name, its node and the client address it saw, so a
// user can tell at a glance which pod answered and whether the source was NATed.
package echo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Config names the pod and the ports to serve.
type Config struct {
	Pod, Namespace, Node string
	HTTPPort             int // HTTP (lab default 8080)
	TCPPort              int // raw TCP echo: echoes bytes back (lab default 9000)
	UDPPort              int // UDP: replies with the identity line and the payload (lab default 9000)
}

// Identity is what every reply reports.
type Identity struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Node      string `json:"node"`
	Client    string `json:"client"`
	Host      string `json:"host,omitempty"`
	Path      string `json:"path,omitempty"`
}

func (id Identity) line() string {
	return fmt.Sprintf("pod=%s namespace=%s node=%s client=%s", id.Pod, id.Namespace, id.Node, id.Client)
}

// Serve runs the servers until ctx ends.
func Serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	start := func(f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- f() }()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.HTTPPort > 0 {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.HTTPPort))
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: cfg.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		start(func() error { return ignoreClosed(srv.Serve(ln)) })
	}
	if cfg.TCPPort > 0 {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.TCPPort))
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); ln.Close() }()
		start(func() error { return cfg.serveTCP(ln) })
	}
	if cfg.UDPPort > 0 {
		pc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", cfg.UDPPort))
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); pc.Close() }()
		start(func() error { return cfg.serveUDP(pc) })
	}
	log.Info("echo serving", "pod", cfg.Pod, "node", cfg.Node, "http", cfg.HTTPPort, "tcp", cfg.TCPPort, "udp", cfg.UDPPort)
	select {
	case <-ctx.Done():
	case err := <-errc:
		cancel()
		wg.Wait()
		return err
	}
	wg.Wait()
	return nil
}

func (c Config) identity(client string) Identity {
	return Identity{Pod: c.Pod, Namespace: c.Namespace, Node: c.Node, Client: client}
}

func (c Config) httpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := c.identity(r.RemoteAddr)
		id.Host, id.Path = r.Host, r.URL.Path
		if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(id)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s host=%s path=%s\n", id.line(), id.Host, id.Path)
	})
}

func (c Config) serveTCP(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return ignoreClosed(err)
		}
		go func() {
			defer conn.Close()
			_, _ = io.Copy(conn, conn)
		}()
	}
}

func (c Config) serveUDP(pc net.PacketConn) error {
	buf := make([]byte, 65535)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return ignoreClosed(err)
		}
		reply := c.identity(addr.String()).line() + " payload=" + string(buf[:n])
		_, _ = pc.WriteTo([]byte(reply), addr)
	}
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// FromEnv fills the identity from the environment a lab pod is started with.
func FromEnv(c Config) Config {
	if c.Pod == "" {
		c.Pod = os.Getenv("POD_NAME")
	}
	if c.Namespace == "" {
		c.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if c.Node == "" {
		c.Node = os.Getenv("NODE_NAME")
	}
	if c.Pod == "" {
		c.Pod, _ = os.Hostname()
	}
	return c
}
