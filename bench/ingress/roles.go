package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // the self runner's -pprof listener
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/internal/ingress/controller"
	"github.com/fjord-net/fjord/internal/ingress/server"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
)

var (
	flagListen    = flag.String("listen", "", "internal: backend listen address")
	flagName      = flag.String("name", "", "internal: backend name (first word of its body)")
	flagStore     = flag.String("store", "", "internal: store endpoint for -role ingress")
	flagHTTP      = flag.String("http-addr", "", "internal: -role ingress HTTP listener")
	flagHTTPS     = flag.String("https-addr", "", "internal: -role ingress HTTPS listener")
	flagMetrics   = flag.String("metrics-addr", "", "internal: -role ingress metrics listener")
	flagAccessLog = flag.String("access-log", "", "internal: -role ingress access log file")
	flagPprof     = flag.String("pprof", "", "internal: -role ingress net/http/pprof listener")
)

// bodySize is the size of every backend answer: a small API-like response.
const bodySize = 128

// roleBackend serves a fixed small body whose first word is the backend's
// name, with keep-alive (idle timeout 120 s, longer than every proxy's
// upstream idle timeout, so no keep-alive race is provoked here).
func roleBackend() int {
	body := []byte(*flagName + " " + strings.Repeat("x", bodySize))[:bodySize-1]
	body = append(body, '\n')
	srv := &http.Server{
		Addr: *flagListen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	}
	return 0
}

// roleIngress runs fjord's ingress the way `fjord ingress` does (store
// connection, server.Run with SetMaxProcs), for a fjord binary that does not
// have the command yet, and with an optional pprof listener for -profile.
func roleIngress() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{*flagStore}})
	if err != nil {
		log.Error("store", "err", err)
		return 1
	}
	defer cli.Close()
	f, err := os.OpenFile(*flagAccessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		log.Error("access log", "err", err)
		return 1
	}
	defer f.Close()
	if *flagPprof != "" {
		l, err := net.Listen("tcp", *flagPprof)
		if err != nil {
			log.Error("pprof", "err", err)
			return 1
		}
		go http.Serve(l, http.DefaultServeMux)
	}
	err = server.Run(ctx, server.Config{
		HTTPAddr: *flagHTTP, HTTPSAddr: *flagHTTPS, MetricsAddr: *flagMetrics,
		ConfigMap: controller.DefaultConfigMap, Class: controller.DefaultClass,
		AccessLog: f, SetMaxProcs: true, ShutdownTimeout: 2 * time.Second,
		Source: source.New(source.NewStore(store.New(cli, "")), 0), Logger: log,
	})
	if err != nil {
		log.Error("ingress", "err", err)
		return 1
	}
	return 0
}
