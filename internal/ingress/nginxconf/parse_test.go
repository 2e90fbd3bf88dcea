package nginxconf

import (
	"crypto/tls"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

func loadFixture(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/nginx-configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cm corev1.ConfigMap
	if err := yaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

func TestParseFixture(t *testing.T) {
	data := loadFixture(t)
	cfg, ignored, err := Parse(data, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(ignored) != 0 {
		t.Errorf("ignored = %v", ignored)
	}
	want := Defaults(6)
	// Values set by the fixture.
	want.KeepAlive = 75 * time.Second
	want.KeepAliveRequests = 1000
	want.UpstreamKeepaliveConnections = 64
	want.WorkerProcesses = 6
	want.LogFormatUpstream = data["log-format-upstream"]
	want.LogFormat = cfg.LogFormat
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config\n got %+v\nwant %+v", cfg, want)
	}
	// Defaults the fixture leaves alone, spelled out.
	checks := []struct {
		name     string
		got, exp any
	}{
		{"upstream-keepalive-timeout", cfg.UpstreamKeepaliveTimeout, 60 * time.Second},
		{"upstream-keepalive-requests", cfg.UpstreamKeepaliveRequests, 10000},
		{"proxy-connect-timeout", cfg.ProxyConnectTimeout, 5 * time.Second},
		{"proxy-read-timeout", cfg.ProxyReadTimeout, 60 * time.Second},
		{"proxy-send-timeout", cfg.ProxySendTimeout, 60 * time.Second},
		{"proxy-body-size", cfg.ProxyBodySize, int64(1 << 20)},
		{"client-header-timeout", cfg.ClientHeaderTimeout, 60 * time.Second},
		{"client-body-timeout", cfg.ClientBodyTimeout, 60 * time.Second},
		{"proxy-next-upstream", cfg.ProxyNextUpstream, NextUpstream{Error: true, Timeout: true}},
		{"proxy-next-upstream-tries", cfg.ProxyNextUpstreamTries, 3},
		{"ssl-protocols", cfg.SSLProtocols, []uint16{tls.VersionTLS12, tls.VersionTLS13}},
		{"ssl-redirect", cfg.SSLRedirect, true},
		{"client-header-buffer-size", cfg.ClientHeaderBufferSize, 1024},
		{"large-client-header-buffers", cfg.LargeClientHeaderBuffers, HeadBuffers{Count: 4, Size: 8192}},
		{"client-body-buffer-size", cfg.ClientBodyBufferSize, int64(8192)},
		{"max-worker-connections", cfg.MaxWorkerConnections, 16384},
		{"max-worker-open-files", cfg.MaxWorkerOpenFiles, 0},
		{"server-tokens", cfg.ServerTokens, false},
		{"allow-backend-server-header", cfg.AllowBackendServerHeader, false},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.exp) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.exp)
		}
	}
}

func TestFixtureLogLine(t *testing.T) {
	cfg, _, err := Parse(loadFixture(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	v := Vars{
		RemoteAddr:             "10.0.0.1",
		TimeLocal:              time.Date(2026, 3, 19, 14, 5, 9, 0, time.FixedZone("", 3600)),
		Request:                "GET /api/v1?x=1 HTTP/1.1",
		Status:                 200,
		BodyBytesSent:          612,
		HTTPUserAgent:          "curl/8.5.0",
		RequestLength:          87,
		RequestTime:            3*time.Millisecond + 900*time.Microsecond,
		ProxyUpstreamName:      ProxyUpstreamName("shop", "web", "80"),
		UpstreamAddr:           []string{"10.244.1.5:8080"},
		UpstreamResponseLength: []int64{612},
		UpstreamResponseTime:   []time.Duration{2 * time.Millisecond},
		UpstreamStatus:         []int{200},
		ReqID:                  "4f6c9a0e1d2b3c4d5e6f708192a3b4c5",
	}
	want := `10.0.0.1 - - [19/Mar/2026:14:05:09 +0100] "GET /api/v1?x=1 HTTP/1.1" 200 612 "-" "curl/8.5.0" 87 0.003 [upstream-shop-web-80] 10.244.1.5:8080 612 0.002 200 4f6c9a0e1d2b3c4d5e6f708192a3b4c5`
	if got := cfg.LogFormat.Render(v); got != want {
		t.Errorf("line\n got %s\nwant %s", got, want)
	}
	// A retried request: lists joined like nginx.
	v.UpstreamAddr = []string{"10.244.1.5:8080", "10.244.2.7:8080"}
	v.UpstreamResponseLength = []int64{0, 612}
	v.UpstreamResponseTime = []time.Duration{5 * time.Second, 1500 * time.Millisecond}
	v.UpstreamStatus = []int{504, 200}
	want = `10.0.0.1 - - [19/Mar/2026:14:05:09 +0100] "GET /api/v1?x=1 HTTP/1.1" 200 612 "-" "curl/8.5.0" 87 0.003 [upstream-shop-web-80] 10.244.1.5:8080, 10.244.2.7:8080 0, 612 5.000, 1.500 504, 200 4f6c9a0e1d2b3c4d5e6f708192a3b4c5`
	if got := cfg.LogFormat.Render(v); got != want {
		t.Errorf("retry line\n got %s\nwant %s", got, want)
	}
}

func TestParseEmptyIsDefaults(t *testing.T) {
	cfg, ignored, err := Parse(nil, 4)
	if err != nil || ignored != nil {
		t.Fatal(err, ignored)
	}
	want := Defaults(4)
	if cfg.LogFormat.String() != want.LogFormat.String() {
		t.Errorf("log format %q", cfg.LogFormat)
	}
	cfg.LogFormat, want.LogFormat = nil, nil // compiled funcs never compare equal
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v", cfg)
	}
	if cfg.WorkerProcesses != 4 || cfg.LogFormatUpstream != DefaultLogFormatUpstream || cfg.KeepAlive != 75*time.Second ||
		cfg.KeepAliveRequests != 1000 || cfg.UpstreamKeepaliveConnections != 320 {
		t.Errorf("defaults wrong: %+v", cfg)
	}
	if Defaults(0).WorkerProcesses != 1 {
		t.Error("numCPU 0 must give 1 worker")
	}
}

func TestParseValues(t *testing.T) {
	cfg, ignored, err := Parse(map[string]string{
		"keep-alive":                     "10s",
		"keep-alive-requests":            "0",
		"upstream-keepalive-connections": "0",
		"upstream-keepalive-timeout":     "1m30s",
		"upstream-keepalive-requests":    " 5 ",
		"worker-processes":               "3",
		"log-format-upstream":            "$host $status",
		"proxy-connect-timeout":          "500ms",
		"proxy-read-timeout":             "2m",
		"proxy-send-timeout":             "1h",
		"proxy-body-size":                "0",
		"client-header-timeout":          "1m30",
		"client-body-timeout":            "7",
		"proxy-next-upstream":            "error   timeout invalid_header http_500 http_502 http_503 http_504 http_403 http_404 http_429 non_idempotent",
		"proxy-next-upstream-tries":      "0",
		"ssl-protocols":                  "TLSv1.3",
		"ssl-redirect":                   "false",
		"server-tokens":                  "true",
		"allow-backend-server-header":    "true",
		"use-http2":                      "true",
		"max-worker-connections":         "0",
		"max-worker-open-files":          "4096",
		"client-header-buffer-size":      "2k",
		"large-client-header-buffers":    "8  16k",
		"client-body-buffer-size":        "1m",
	}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ignored, []string{"use-http2"}) {
		t.Errorf("ignored = %v", ignored)
	}
	want := Config{
		KeepAlive: 10 * time.Second, KeepAliveRequests: 0, UpstreamKeepaliveConnections: 0,
		UpstreamKeepaliveTimeout: 90 * time.Second, UpstreamKeepaliveRequests: 5, WorkerProcesses: 3,
		LogFormatUpstream: "$host $status", LogFormat: cfg.LogFormat,
		ProxyConnectTimeout: 500 * time.Millisecond, ProxyReadTimeout: 2 * time.Minute, ProxySendTimeout: time.Hour,
		ProxyBodySize: 0, ClientHeaderTimeout: 90 * time.Second, ClientBodyTimeout: 7 * time.Second,
		ProxyNextUpstream: NextUpstream{Error: true, Timeout: true, InvalidHeader: true, NonIdempotent: true,
			Statuses: []int{500, 502, 503, 504, 403, 404, 429}},
		ProxyNextUpstreamTries: 0, SSLProtocols: []uint16{tls.VersionTLS13}, SSLRedirect: false,
		ClientHeaderBufferSize: 2 << 10, LargeClientHeaderBuffers: HeadBuffers{Count: 8, Size: 16 << 10},
		ClientBodyBufferSize: 1 << 20, MaxWorkerConnections: 0, MaxWorkerOpenFiles: 4096,
		ServerTokens: true, AllowBackendServerHeader: true,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config\n got %+v\nwant %+v", cfg, want)
	}
	if got := cfg.LogFormat.Render(Vars{Host: "a.com", Status: 404}); got != "a.com 404" {
		t.Errorf("log = %q", got)
	}
	if !cfg.ProxyNextUpstream.RetriesStatus(429) || cfg.ProxyNextUpstream.RetriesStatus(501) {
		t.Error("RetriesStatus")
	}
	cfg, _, err = Parse(map[string]string{"proxy-next-upstream": "off", "proxy-body-size": "512k", "ssl-protocols": "TLSv1.3 TLSv1.2 TLSv1.3"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.ProxyNextUpstream, NextUpstream{}) || cfg.ProxyBodySize != 512<<10 ||
		!reflect.DeepEqual(cfg.SSLProtocols, []uint16{tls.VersionTLS12, tls.VersionTLS13}) {
		t.Errorf("got %+v", cfg)
	}
}

func TestParseBadValues(t *testing.T) {
	bad := map[string][]string{
		"keep-alive":                     {"abc", "", "-1", "5x", "1s5", "500ms1s", "s", "1.5s", "99999999999999999y"},
		"keep-alive-requests":            {"abc", "-1", "1.5", "1k"},
		"upstream-keepalive-connections": {"x", "-3"},
		"upstream-keepalive-timeout":     {"sixty"},
		"upstream-keepalive-requests":    {"1e4"},
		"worker-processes":               {"0", "-1", "Auto", "many"},
		"log-format-upstream":            {"$nope", "$", "${remote_addr", "${}", "a $ b", "${re-mote}"},
		"proxy-connect-timeout":          {"5 s"},
		"proxy-read-timeout":             {"1m1m"},
		"proxy-send-timeout":             {"60S"},
		"proxy-body-size":                {"1t", "m", "-1m", "1.5m", "", "1 m", "99999999999g"},
		"client-header-timeout":          {"h"},
		"client-body-timeout":            {"1d-1"},
		"proxy-next-upstream":            {"", "bogus", "error error", "off error", "http_501"},
		"proxy-next-upstream-tries":      {"three"},
		"ssl-protocols":                  {"", "TLSv1.1", "TLSv1.2 SSLv3", "tlsv1.3"},
		"ssl-redirect":                   {"yes", "maybe", ""},
		"client-header-buffer-size":      {"0", "2m", "1k1"},
		"large-client-header-buffers":    {"4", "8k", "0 8k", "4 0", "4 8k 1", "four 8k", "4 2m"},
		"client-body-buffer-size":        {"", "0", "1g"},
		"max-worker-connections":         {"-1", "lots"},
		"max-worker-open-files":          {"1.5"},
		"server-tokens":                  {"on"},
		"allow-backend-server-header":    {"yes"},
	}
	good := loadFixture(t)
	for key, vals := range bad {
		for _, val := range vals {
			data := map[string]string{}
			for k, v := range good {
				data[k] = v
			}
			data[key] = val
			_, _, err := Parse(data, 2)
			if err == nil {
				t.Errorf("%s=%q: no error", key, val)
				continue
			}
			if prefix := key + ": " + strconv.Quote(val) + " "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("%s=%q: error %q does not start with %q", key, val, err, prefix)
			}
		}
	}
}

func TestUnknownKeyListedOnce(t *testing.T) {
	_, ignored, err := Parse(map[string]string{"zz-unknown": "1", "aa-unknown": "x", "keep-alive": "1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ignored, []string{"aa-unknown", "zz-unknown"}) {
		t.Errorf("ignored = %v", ignored)
	}
}

func TestErrorMessage(t *testing.T) {
	_, _, err := Parse(map[string]string{"keep-alive": "abc"}, 1)
	if err == nil || !strings.HasPrefix(err.Error(), `keep-alive: "abc" is not a time`) {
		t.Errorf("err = %v", err)
	}
}

func TestParseTime(t *testing.T) {
	cases := map[string]time.Duration{
		"0": 0, "60": time.Minute, "5s": 5 * time.Second, "1m": time.Minute, "500ms": 500 * time.Millisecond,
		"1h": time.Hour, "1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1M": 30 * 24 * time.Hour,
		"1y": 365 * 24 * time.Hour, "1h30m": 90 * time.Minute, "1s500ms": 1500 * time.Millisecond, "2m5": 125 * time.Second,
	}
	for in, want := range cases {
		got, err := parseTime(in)
		if err != nil || got != want {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestMaxConnections follows ingress-nginx: worker-processes times
// max-worker-connections; 0 derives it from max-worker-open-files, and 0
// there from the open-file limit.
func TestMaxConnections(t *testing.T) {
	for _, tc := range []struct {
		workers, conns, files int
		nofile                uint64
		want                  int
	}{
		{2, 16384, 0, 20000, 32768},
		{2, 0, 0, 20000, 2 * (20000 - 1024) * 3 / 4},
		{1, 0, 0, 1500, 768}, // open files at least 1024
		{3, 0, 4096, 20000, 3 * 3072},
		{1, 10, 0, 0, 10},
	} {
		c := Defaults(tc.workers)
		c.MaxWorkerConnections, c.MaxWorkerOpenFiles = tc.conns, tc.files
		if got := c.MaxConnections(tc.nofile); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc, got, tc.want)
		}
	}
}
