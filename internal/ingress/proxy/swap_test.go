package proxy

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestSwapsUnderLoadFailNoRequest swaps 1,000 Snapshots while clients
// keep sending requests over keep-alive connections. Every Snapshot
// routes the host, but each differs: endpoints move between two
// backends, the route table is rebuilt from differently named Ingresses,
// and every tenth swap changes upstream pool settings (a new transport)
// and client keep-alive settings (a new server generation).
func TestSwapsUnderLoadFailNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	a := startBackend(t, "a", 0, nil)
	b := startBackend(t, "b", 0, nil)
	tp := startProxy(t, defaults())
	snapshot := func(i int) {
		cfg := defaults()
		if i%10 == 0 {
			cfg.UpstreamKeepaliveConnections = 16 + i%7
			cfg.KeepAlive = time.Duration(30+i%5) * time.Second
		}
		var eps []netipAddrPort
		switch i % 3 {
		case 0:
			eps = []netipAddrPort{a.addr(t)}
		case 1:
			eps = []netipAddrPort{b.addr(t)}
		default:
			eps = []netipAddrPort{a.addr(t), b.addr(t)}
		}
		ings := []*networkingv1.Ingress{ingress("ns", fmt.Sprintf("gen-%d", i), "nginx", map[string]string{"load.example/": "svc:http"}, nil)}
		tp.swap(cfg, ings, map[UpstreamKey]Upstream{key("ns", "svc", "http"): {Endpoints: eps}})
		tp.http.Apply(cfg)
	}
	snapshot(1)

	c := client(t)
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ { // bounded; normally ended by stop
				select {
				case <-stop:
					return
				default:
				}
				req := mustRequest(t, "GET", tp.httpURL+"/p", "load.example")
				resp, err := c.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (string(body) != "a" && string(body) != "b") {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s %q", resp.Status, body))
				}
			}
		}()
	}
	const swaps = 1000
	for i := 0; i < swaps; i++ {
		snapshot(i)
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d swaps, %d requests, %d failed", swaps, sent.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	if sent.Load() < swaps {
		t.Errorf("only %d requests were sent during %d swaps", sent.Load(), swaps)
	}
}
