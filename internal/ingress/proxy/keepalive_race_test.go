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
func runKeepaliveRace(t *testing.T, idle, jitter time.Duration, workers, perWorker int, forced float64, upstreamRequests int, nonIdempotent bool) (*raceResult, *testProxy) {
	cfg := defaults()
	if upstreamRequests > 0 {
		cfg.UpstreamKeepaliveRequests = upstreamRequests
	}
	cfg.ProxyNextUpstream.NonIdempotent = nonIdempotent
	tp := startProxy(t, cfg)
	var ings []*networkingv1.Ingress
	ups := map[UpstreamKey]Upstream{}
	if forced > 0 {
		be := startBackendOn(t, "race", 0, func(l net.Listener) net.Listener { return newRaceListener(l, forced) }, nil)
		ings = append(ings, ingress("ns", "race", "nginx", map[string]string{"race.example/": "race:http"}, nil))
		ups[key("ns", "race", "http")] = Upstream{Endpoints: []netipAddrPort{be.addr(t)}}
	} else {
		// One backend per worker, so that the worker's gap is the idle
		// time of that backend's pooled connection: requests keep
		// arriving around the moment the backend closes it.
		for w := 0; w < workers; w++ {
			be := startBackend(t, "race", idle, nil)
			svc := fmt.Sprintf("race%d", w)
			ings = append(ings, ingress("ns", svc, "nginx", map[string]string{svc + ".example/": svc + ":http"}, nil))
			ups[key("ns", svc, "http")] = Upstream{Endpoints: []netipAddrPort{be.addr(t)}}
		}
	}
	tp.swap(cfg, ings, ups)
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
				if forced == 0 {
					req.Host = fmt.Sprintf("race%d.example", seed)
				}
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
		nonIdempotent     bool // proxy-next-upstream "error timeout non_idempotent"
	}{
		// net/http backends with a 100ms keep-alive idle timeout.
		{"idle100ms", 100 * time.Millisecond, 5 * time.Millisecond, 100, 200, 0, 0, false},
		// The case: a 1s upstream idle timeout and 20,000 requests with
		// random gaps around 1s (500 workers x 40, about 40 s).
		{"idle1s", time.Second, 20 * time.Millisecond, 500, 40, 0, 0, false},
		// A quarter of the requests on reused connections hit the race.
		{"forced", 2 * time.Millisecond, 2 * time.Millisecond, 50, 400, 0.25, 0, false},
		// The same with upstream connections retired every 3 requests.
		{"forced-upstream-keepalive-requests-3", 2 * time.Millisecond, 2 * time.Millisecond, 50, 100, 0.25, 3, false},
		// With non_idempotent, POST is resent too and never fails.
		{"forced-non_idempotent", 2 * time.Millisecond, 2 * time.Millisecond, 50, 100, 0.25, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, tp := runKeepaliveRace(t, tc.idle, tc.jitter, tc.workers, tc.requests, tc.forced, tc.upstreamRequests, tc.nonIdempotent)
			stale := tp.metric(t, "fjord_ingress_upstream_stale_connection_retries_total", nil)
			retries := tp.metric(t, "fjord_ingress_upstream_retries_total", nil)
			reused := tp.metric(t, "fjord_ingress_upstream_connections_total", map[string]string{"reused": "true"})
			fresh := tp.metric(t, "fjord_ingress_upstream_connections_total", map[string]string{"reused": "false"})
			t.Logf("%d requests (%d POST): %d 5xx on idempotent requests, %d client errors, %d POST 5xx; upstream connections: %.0f reused, %.0f new; %.0f resent by the transport after a stale keep-alive connection, %.0f retried by proxy-next-upstream",
				res.requests.Load(), res.postRequests.Load(), res.fiveXX.Load(), res.errors.Load(), res.post5xx.Load(), reused, fresh, stale, retries)
			if tc.forced > 0 && stale == 0 {
				t.Error("the forced race never happened; the test proves nothing")
			}
			if tc.nonIdempotent && res.post5xx.Load() != 0 {
				t.Errorf("%d POST 5xx with non_idempotent", res.post5xx.Load())
			}
			if res.fiveXX.Load() != 0 || res.errors.Load() != 0 {
				t.Errorf("idempotent requests failed: %d 5xx, %d errors; first: %v", res.fiveXX.Load(), res.errors.Load(), res.firstFailure.Load())
			}
		})
	}
}
