package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/syncrunner"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestTracker(t *testing.T) {
	const timeout = 60 * time.Second
	fail := errors.New("nft: permission denied")
	type step struct {
		at      time.Duration // since t0
		sync    string        // "ok", "fail" (starting 1s earlier) or "" (just look)
		healthy bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"healthy while starting", []step{{at: 0, healthy: true}, {at: 59 * time.Second, healthy: true}}},
		{"never reporting is unhealthy after the timeout", []step{{at: 60 * time.Second, healthy: false}}},
		{"syncing every period stays healthy", []step{{30 * time.Second, "ok", true}, {60 * time.Second, "ok", true}, {89 * time.Second, "", true}}},
		{"a hung loop goes unhealthy", []step{{10 * time.Second, "ok", true}, {69 * time.Second, "", true}, {70 * time.Second, "", false}}},
		{"a failure is tolerated for the timeout", []step{{10 * time.Second, "ok", true}, {20 * time.Second, "fail", true}, {50 * time.Second, "fail", true}, {78 * time.Second, "fail", true}, {79 * time.Second, "fail", false}}},
		{"a success heals", []step{{20 * time.Second, "fail", true}, {90 * time.Second, "fail", false}, {91 * time.Second, "ok", true}}},
	} {
		tr := NewTracker(timeout, t0)
		for i, s := range tc.steps {
			now := t0.Add(s.at)
			switch s.sync {
			case "ok":
				tr.Synced(now.Add(-time.Second), now, nil)
			case "fail":
				tr.Synced(now.Add(-time.Second), now, fail)
			}
			if got := tr.Status(now).Healthy; got != s.healthy {
				t.Errorf("%s: step %d at %v: healthy %v, want %v", tc.name, i, s.at, got, s.healthy)
			}
		}
	}
}

// sp builds a ServicePort of Service ns/name with endpoints "ip:port@node"
// (node "me" is local; a trailing "!" marks it not ready).
func sp(ns, name, port string, hc uint16, eps ...string) servicemap.ServicePort {
	p := servicemap.ServicePort{Namespace: ns, Name: name, PortName: port, Protocol: servicemap.TCP, Port: 80, HealthCheckNodePort: hc,
		ExternalTrafficPolicyLocal: hc != 0, NodePort: 30000}
	for _, e := range eps {
		ready := !strings.HasSuffix(e, "!")
		e = strings.TrimSuffix(e, "!")
		addr, node, _ := strings.Cut(e, "@")
		ap := netip.MustParseAddrPort(addr)
		p.Endpoints = append(p.Endpoints, servicemap.Endpoint{IP: ap.Addr(), Port: ap.Port(), NodeName: node, Ready: ready, Serving: ready, Weight: 1, IsLocal: node == "me"})
	}
	return p
}

func mapOf(ps ...servicemap.ServicePort) servicemap.Map {
	m := servicemap.Map{Ports: map[string]servicemap.ServicePort{}}
	for _, p := range ps {
		m.Ports[p.Key()] = p
	}
	return m
}

func TestServices(t *testing.T) {
	m := mapOf(
		// Two ports of one pod count once; the remote and the not-ready one not at all.
		sp("shop", "web", "http", 31000, "10.244.1.5:80@me", "10.244.2.5:80@other", "10.244.1.6:80@me!"),
		sp("shop", "web", "https", 31000, "10.244.1.5:443@me", "10.244.1.7:443@me"),
		sp("shop", "remote-only", "", 31001, "10.244.2.9:80@other"),
		sp("shop", "cluster", "", 0, "10.244.1.5:80@me"),
	)
	got := Services(m)
	want := []ServiceHealth{
		{Namespace: "shop", Name: "remote-only", Port: 31001, LocalEndpoints: 0},
		{Namespace: "shop", Name: "web", Port: 31000, LocalEndpoints: 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Services = %v, want %v", got, want)
	}
}

// freePort returns a port free on 127.0.0.1 now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

type hcAnswer struct {
	Service struct {
		Namespace, Name string
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// ask GETs a health-check port on loopback; status 0 means refused.
func ask(t *testing.T, c *http.Client, port uint16) (int, hcAnswer) {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return 0, hcAnswer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a hcAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("port %d: body %q: %v", port, b, err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("port %d: Content-Type %q", port, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, a
}

// TestServiceServers runs real listeners on loopback through a sequence of
// desired states: new ports open, gone ones close, kept ones keep their
// listener (a keep-alive connection survives), and answers follow the
// counts and the proxy's health.
func TestServiceServers(t *testing.T) {
	healthy := true
	s := NewServiceServers(nil, func() bool { return healthy }, nil)
	defer s.Close()
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	pa, pb, pc := freePort(t), freePort(t), freePort(t)
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	must := func(svcs ...ServiceHealth) {
		t.Helper()
		if err := s.Set(lo, svcs); err != nil {
			t.Fatal(err)
		}
	}
	must(ServiceHealth{"ns", "a", pa, 2}, ServiceHealth{"ns", "b", pb, 0})
	if code, a := ask(t, keepAlive, pa); code != 200 || a.Service.Name != "a" || a.Service.Namespace != "ns" || a.LocalEndpoints != 2 || !a.ServiceProxyHealthy {
		t.Errorf("a: %d %+v", code, a)
	}
	if code, a := ask(t, fresh, pb); code != 503 || a.LocalEndpoints != 0 {
		t.Errorf("b without local endpoints: %d %+v, want 503", code, a)
	}

	// a loses its endpoints, b gains some, c appears.
	must(ServiceHealth{"ns", "a", pa, 0}, ServiceHealth{"ns", "b", pb, 1}, ServiceHealth{"ns", "c", pc, 1})
	if code, _ := ask(t, keepAlive, pa); code != 503 {
		t.Errorf("a after losing its endpoints: %d, want 503", code)
	}
	if code, _ := ask(t, fresh, pb); code != 200 {
		t.Errorf("b: %d, want 200", code)
	}
	if code, _ := ask(t, fresh, pc); code != 200 {
		t.Errorf("c: %d, want 200", code)
	}
	// The proxy going unhealthy fails every Service.
	healthy = false
	if code, a := ask(t, fresh, pb); code != 503 || a.ServiceProxyHealthy {
		t.Errorf("b with the proxy unhealthy: %d %+v, want 503", code, a)
	}
	healthy = true

	// b goes away; c moves to b's old port.
	must(ServiceHealth{"ns", "a", pa, 1}, ServiceHealth{"ns", "c", pb, 1})
	if code, a := ask(t, fresh, pb); code != 200 || a.Service.Name != "c" {
		t.Errorf("c on its new port: %d %+v", code, a)
	}
	if code, _ := ask(t, fresh, pc); code != 0 {
		t.Errorf("c's old port still answers: %d", code)
	}
	if got := s.Addrs(); len(got) != 2 {
		t.Errorf("listening on %v, want 2 addresses", got)
	}
	// a kept its listener: the keep-alive connection from the start still works.
	if code, _ := ask(t, keepAlive, pa); code != 200 {
		t.Errorf("a: %d, want 200", code)
	}
	must()
	if code, _ := ask(t, fresh, pa); code != 0 {
		t.Errorf("a still answers after its Service went away: %d", code)
	}
}

// TestServiceServersReportsListenErrors: a port taken by someone else is
// reported with the Service's name, the other Services are still served,
// and the next Set tries again.
func TestServiceServersReportsListenErrors(t *testing.T) {
	s := NewServiceServers(nil, nil, nil)
	defer s.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := uint16(taken.Addr().(*net.TCPAddr).Port)
	free := freePort(t)
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	svcs := []ServiceHealth{{"ns", "busy", tp, 1}, {"ns", "ok", free, 1}}
	err = s.Set(lo, svcs)
	if err == nil || !strings.Contains(err.Error(), "Service ns/busy") {
		t.Fatalf("Set: %v, want an error naming ns/busy", err)
	}
	if code, _ := ask(t, http.DefaultClient, free); code != 200 {
		t.Errorf("ok: %d, want 200", code)
	}
	taken.Close()
	if err := s.Set(lo, svcs); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if code, _ := ask(t, http.DefaultClient, tp); code != 200 {
		t.Errorf("busy after the retry: %d, want 200", code)
	}
}

// TestHealth drives a Health as the service proxy does and checks
// /healthz, /livez, the health-check ports and the kube-proxy metrics.
func TestHealth(t *testing.T) {
	now := t0
	reg := prometheus.NewRegistry()
	port := freePort(t)
	h := New(Config{SyncPeriod: 30 * time.Second, NodeIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Registerer: reg, Now: func() time.Time { return now }})
	defer h.Close()
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %q: %v", path, rec.Body.String(), err)
		}
		return rec.Code, body
	}
	if code, body := get("/healthz"); code != 200 || body["nodeEligible"] != true || body["currentTime"] != now.String() {
		t.Errorf("/healthz while starting: %d %v", code, body)
	}

	m1 := mapOf(sp("shop", "web", "http", port, "10.244.1.5:80@me"), sp("shop", "db", "", 0, "10.244.2.5:5432@other"))
	m1.Ports[servicemap.Key("shop", "web", "http", servicemap.TCP)] = withTrigger(m1, "shop", "web", "http", now.Add(-3*time.Second))
	now = now.Add(time.Second)
	h.Synced(m1, true, now.Add(-200*time.Millisecond), nil)
	if code, _ := ask(t, http.DefaultClient, port); code != 200 {
		t.Errorf("health-check port of shop/web: %d, want 200", code)
	}
	if got := testutil.ToFloat64(h.m.serviceChanges); got != 2 {
		t.Errorf("service changes %v, want 2 (both added)", got)
	}
	if got := testutil.ToFloat64(h.m.endpointChanges); got != 2 {
		t.Errorf("endpoint changes %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.lastSync); got != float64(now.Unix()) {
		t.Errorf("last sync %v, want %v", got, now.Unix())
	}

	// The local endpoint goes: endpoints changed, the port answers 503.
	m2 := mapOf(sp("shop", "web", "http", port, "10.244.2.6:80@other"), sp("shop", "db", "", 0, "10.244.2.5:5432@other"))
	now = now.Add(time.Second)
	h.Synced(m2, false, now.Add(-100*time.Millisecond), nil)
	if code, a := ask(t, http.DefaultClient, port); code != 503 || a.LocalEndpoints != 0 {
		t.Errorf("after the local endpoint left: %d %+v", code, a)
	}
	if s, e := testutil.ToFloat64(h.m.serviceChanges), testutil.ToFloat64(h.m.endpointChanges); s != 2 || e != 3 {
		t.Errorf("changes: services %v endpoints %v, want 2 and 3", s, e)
	}
	if got := testutil.ToFloat64(h.m.noLocalEndpoints.WithLabelValues("external")); got != 1 {
		t.Errorf("no local endpoints (external) %v, want 1", got)
	}

	// Syncs fail from now on: healthy for 2 × syncPeriod, then 503 everywhere.
	fail := errors.New("nft: exit status 1")
	for i := 0; i < 4; i++ {
		now = now.Add(20 * time.Second)
		h.Synced(m2, false, now.Add(-time.Second), fail)
	}
	if got := testutil.ToFloat64(h.m.syncFailures); got != 4 {
		t.Errorf("sync failures %v, want 4", got)
	}
	if code, body := get("/livez"); code != 503 || body["lastUpdated"] == body["currentTime"] {
		t.Errorf("/livez after 80s of failures: %d %v", code, body)
	}
	if code, _ := get("/healthz"); code != 503 {
		t.Errorf("/healthz after 80s of failures: %d", code)
	}
	h.Synced(m2, false, now, syncrunner.ErrNotReady)
	if got := testutil.ToFloat64(h.m.syncFailures); got != 4 {
		t.Errorf("a sync waiting for the store counted as an nftables failure: %v", got)
	}
	now = now.Add(time.Second)
	h.Synced(m2, false, now.Add(-time.Second), nil)
	if code, _ := get("/livez"); code != 200 {
		t.Errorf("/livez after a good sync: %d", code)
	}
	h.tracker.SetNodeEligible(false)
	if code, body := get("/healthz"); code != 503 || body["nodeEligible"] != false {
		t.Errorf("/healthz of an ineligible node: %d %v", code, body)
	}
	if code, _ := get("/livez"); code != 200 {
		t.Errorf("/livez ignores eligibility: %d", code)
	}
	if got := testutil.ToFloat64(h.m.healthz.WithLabelValues("503")); got != 2 {
		t.Errorf("kubeproxy_proxy_healthz_total{code=503} %v, want 2", got)
	}
	if n := testutil.CollectAndCount(h.m.networkProgramming); n != 1 {
		t.Errorf("network programming histogram has %d series", n)
	}
}

func withTrigger(m servicemap.Map, ns, name, port string, at time.Time) servicemap.ServicePort {
	p := m.Ports[servicemap.Key(ns, name, port, servicemap.TCP)]
	p.TriggerTime = at
	return p
}
