package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// raceResult counts what the clients saw.
type raceResult struct {
	requests, fiveXX, errors atomic.Int64
	postRequests, post5xx    atomic.Int64
	firstFailure             atomic.Value
}

// runKeepaliveRace sends workers*perWorker requests through the proxy to a
// backend whose keep-alive idle timeout is idle, each worker pausing a
// random gap in [idle-jitter, idle+jitter] between requests, so that the
// proxy keeps reusing upstream connections just as the backend closes
// them. Methods are mixed: GET, HEAD, PUT and DELETE (idempotent: must
// never fail) and POST (non-idempotent: may only be retried when nothing
// was sent, so it is counted on its own).
//
// forced > 0 replaces the backend's idle timeout by a raceListener: that
// share of the requests on reused connections hits the race.
func runKeepaliveRace(t *testing.T, idle, jitter time.Duration, workers, perWorker int, forced float64, upstreamRequests int) (*raceResult, *testProxy) {
	var be *backend
	if forced > 0 {
		be = startBackendOn(t, "race", 0, func(l net.Listener) net.Listener { return newRaceListener(l, forced) }, nil)
	} else {
		be = startBackend(t, "race", idle, nil)
	}
	cfg := defaults()
	if upstreamRequests > 0 {
		cfg.UpstreamKeepaliveRequests = upstreamRequests
	}
	tp := startProxy(t, cfg)
	tp.swap(cfg, []*networkingv1.Ingress{ingress("ns", "race", "nginx", map[string]string{"race.example/": "race:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "race", "http"): {Endpoints: []netipAddrPort{be.addr(t)}}})
	c := client(t)
	res := &raceResult{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			// Start spread out so the workers do not move in lockstep.
			time.Sleep(time.Duration(rng.Int64N(int64(idle))))
			for i := 0; i < perWorker; i++ {
				method, body := "GET", []byte(nil)
				switch r := rng.IntN(10); {
				case r == 0:
					method = "HEAD"
				case r == 1:
					method, body = "PUT", []byte("put-body")
				case r == 2:
					method = "DELETE"
				case r == 3:
					method, body = "POST", []byte("post-body")
				}
				req, _ := http.NewRequest(method, tp.httpURL+"/x", bytes.NewReader(body))
				if body == nil {
					req.Body = nil
				}
				req.Host = "race.example"
				resp, err := c.Do(req)
				res.requests.Add(1)
				if method == "POST" {
					res.postRequests.Add(1)
				}
				switch {
				case err != nil:
					res.errors.Add(1)
					res.firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %v", method, err))
				case resp.StatusCode >= 500:
					if method == "POST" {
						res.post5xx.Add(1)
					} else {
						res.fiveXX.Add(1)
						res.firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %s", method, resp.Status))
					}
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				gap := idle - jitter + time.Duration(rng.Int64N(int64(2*jitter)+1))
				time.Sleep(gap)
			}
		}(uint64(w))
	}
	wg.Wait()
	return res, tp
}

func TestKeepaliveRaceNo5xx(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	for _, tc := range []struct {
		name              string
		idle, jitter      time.Duration
		workers, requests int
		forced            float64
		upstreamRequests  int
	}{
		// A net/http backend with a 100ms keep-alive idle timeout.
		{"idle100ms", 100 * time.Millisecond, 30 * time.Millisecond, 100, 200, 0, 0},
		// The 1s idle timeout, fewer requests to stay within time.
		{"idle1s", time.Second, 100 * time.Millisecond, 200, 10, 0, 0},
		// A quarter of the requests on reused connections hit the race.
		{"forced", 2 * time.Millisecond, 2 * time.Millisecond, 50, 400, 0.25, 0},
		// The same with upstream connections retired every 3 requests.
		{"forced-upstream-keepalive-requests-3", 2 * time.Millisecond, 2 * time.Millisecond, 50, 100, 0.25, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, tp := runKeepaliveRace(t, tc.idle, tc.jitter, tc.workers, tc.requests, tc.forced, tc.upstreamRequests)
			stale := tp.metric(t, "fjord_ingress_upstream_stale_connection_retries_total", nil)
			retries := tp.metric(t, "fjord_ingress_upstream_retries_total", nil)
			reused := tp.metric(t, "fjord_ingress_upstream_connections_total", map[string]string{"reused": "true"})
			fresh := tp.metric(t, "fjord_ingress_upstream_connections_total", map[string]string{"reused": "false"})
			t.Logf("%d requests (%d POST): %d 5xx on idempotent requests, %d client errors, %d POST 5xx; upstream connections: %.0f reused, %.0f new; %.0f resent by the transport after a stale keep-alive connection, %.0f retried by proxy-next-upstream",
				res.requests.Load(), res.postRequests.Load(), res.fiveXX.Load(), res.errors.Load(), res.post5xx.Load(), reused, fresh, stale, retries)
			if tc.forced > 0 && stale == 0 {
				t.Error("the forced race never happened; the test proves nothing")
			}
			if res.fiveXX.Load() != 0 || res.errors.Load() != 0 {
				t.Errorf("idempotent requests failed: %d 5xx, %d errors; first: %v", res.fiveXX.Load(), res.errors.Load(), res.firstFailure.Load())
			}
		})
	}
}
