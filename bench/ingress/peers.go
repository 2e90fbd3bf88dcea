package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"
)

// seed holds the settings all three proxies take from the seed's ConfigMap,
// with ingress-nginx's defaults for the keys it does not set.
type seed struct {
	Raw                         []byte
	Data                        map[string]string
	KeepAlive, KeepAliveReqs    int // client side: keep-alive (s), keep-alive-requests
	UpKeepalive                 int // upstream-keepalive-connections
	UpKeepaliveTimeout, UpKARqs int // upstream-keepalive-timeout (s), -requests
	LogFormat                   string
}

func loadSeed(path string) (*seed, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed ConfigMap: %w", err)
	}
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil || cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("seed ConfigMap %s: not a ConfigMap (%v)", path, err)
	}
	s := &seed{Raw: raw, Data: cm.Data}
	num := func(key string, def int) int {
		if v, ok := cm.Data[key]; ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(v, "s")); err == nil {
				return n
			}
		}
		return def
	}
	// Defaults: ingress-nginx's (docs/user-guide/nginx-configuration/configmap.md).
	s.KeepAlive = num("keep-alive", 75)
	s.KeepAliveReqs = num("keep-alive-requests", 1000)
	s.UpKeepalive = num("upstream-keepalive-connections", 320)
	s.UpKeepaliveTimeout = num("upstream-keepalive-timeout", 60)
	s.UpKARqs = num("upstream-keepalive-requests", 10000)
	s.LogFormat = cm.Data["log-format-upstream"]
	if s.LogFormat == "" {
		s.LogFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id`
	}
	if w := cm.Data["worker-processes"]; w != "" && w != "auto" {
		return nil, fmt.Errorf("seed worker-processes %q: this benchmark expects auto (= the proxy CPU set)", w)
	}
	return s, nil
}

// target is one thing wrk is pointed at.
type target struct {
	Name      string
	URL       string
	proc      *proc
	AccessLog string
	Info      string // workers/threads as observed
	Samples   []*sample
	Warm      *sample
}

func (t *target) label() string {
	return map[string]string{"fjord": "fjord", "nginx": "nginx", "haproxy": "HAProxy", "direct": "direct to one backend"}[t.Name]
}

func (b *bench) target(name string) *target {
	for _, t := range b.targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// startBackends starts one backend per loopback address, all on one port.
func (b *bench) startBackends(ctx context.Context) error {
	for i := 1; i <= *flagBackends; i++ {
		b.backendIPs = append(b.backendIPs, fmt.Sprintf("127.0.0.%d", i))
	}
	var err error
	if b.backendPort, err = freePort(b.backendIPs...); err != nil {
		return err
	}
	for i, ip := range b.backendIPs {
		addr := fmt.Sprintf("%s:%d", ip, b.backendPort)
		p, err := b.start(fmt.Sprintf("backend-b%d", i+1), *flagClientCP, os.Environ(), "",
			b.self, "-role", "backend", "-listen", addr, "-name", fmt.Sprintf("b%d", i+1))
		if err != nil {
			return err
		}
		if err := waitHTTP(ctx, p, "http://"+addr+"/", "", 200, 10*time.Second); err != nil {
			return err
		}
	}
	b.logf("%d backends on %s, port %d", len(b.backendIPs), strings.Join(b.backendIPs, ", "), b.backendPort)
	return nil
}

// objectsYAML is what fjord reads: a Service without selector, its
// EndpointSlice listing the backends, and an Ingress for bench.local.
func (b *bench) objectsYAML() string {
	var eps strings.Builder
	for _, ip := range b.backendIPs {
		fmt.Fprintf(&eps, "  - addresses: [\"%s\"]\n    conditions: {ready: true}\n", ip)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: %[1]d, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-1
  namespace: default
  labels: {kubernetes.io/service-name: bench}
addressType: IPv4
ports: [{name: http, port: %[1]d, protocol: TCP}]
endpoints:
%[2]s---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench, namespace: default}
spec:
  ingressClassName: nginx
  rules:
  - host: %[3]s
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: bench, port: {number: 80}}}
`, b.backendPort, eps.String(), host)
}

// startFjord starts the store, applies the seed's ConfigMap and the objects,
// and starts fjord's ingress on the proxy CPUs.
func (b *bench) startFjord(ctx context.Context, t *target, sd *seed) error {
	stateDir := filepath.Join(b.tmp, "store")
	b.storeSock = filepath.Join(stateDir, "etcd.sock")
	ep := "unix://" + b.storeSock
	env := append(os.Environ(), "FJORD_ETCD_ENDPOINTS="+ep)
	st, err := b.start("store", *flagClientCP, env, "", b.fjord, "etcd", "--state-dir", stateDir)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(b.storeSock); err == nil {
			if _, err := runCmd(ctx, 10*time.Second, env, b.fjord, "get", "configmaps", "-A"); err == nil {
				break
			}
		}
		if st.exited() || time.Now().After(deadline) {
			return fmt.Errorf("store did not come up:\n%s", st.logTail(15))
		}
		time.Sleep(200 * time.Millisecond)
	}
	seedFile := filepath.Join(b.tmp, "nginx-configuration.yaml")
	objFile := filepath.Join(b.tmp, "objects.yaml")
	if err := os.WriteFile(seedFile, sd.Raw, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(objFile, []byte(b.objectsYAML()), 0o644); err != nil {
		return err
	}
	for _, f := range []string{seedFile, objFile} {
		if _, err := runCmd(ctx, 30*time.Second, env, b.fjord, "apply", "-f", f); err != nil {
			return err
		}
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort("127.0.0.1"); err != nil {
			return err
		}
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	t.AccessLog = filepath.Join(b.tmp, "fjord-access.log")
	var argv []string
	if b.runner == "fjord" {
		argv = []string{b.fjord, "ingress", "--etcd-endpoints", ep, "--http-addr", addr(ports[0]), "--https-addr", addr(ports[1]),
			"--metrics-addr", addr(ports[2]), "--access-log", t.AccessLog, "--shutdown-timeout", "2s"}
	} else {
		argv = []string{b.self, "-role", "ingress", "-store", ep, "-http-addr", addr(ports[0]), "-https-addr", addr(ports[1]),
			"-metrics-addr", addr(ports[2]), "-access-log", t.AccessLog}
	}
	p, err := b.start("fjord-ingress", *flagProxyCPU, os.Environ(), "", argv...)
	if err != nil {
		return err
	}
	t.proc = p
	t.URL = "http://" + addr(ports[0]) + "/"
	b.fjordMetrics = "http://" + addr(ports[2]) + "/metrics"
	if err := waitHTTP(ctx, p, "http://"+addr(ports[2])+"/healthz", "", 200, 20*time.Second); err != nil {
		return err
	}
	return waitHTTP(ctx, p, t.URL, host, 200, 10*time.Second)
}

const nginxConf = `# Rendered by bench/ingress the way ingress-nginx renders the seed's ConfigMap
# (rootfs/etc/nginx/template/nginx.tmpl), reduced to one server and one upstream.
daemon off;
master_process on;
worker_processes {{.Workers}};   # worker-processes: auto = the proxy CPU set, as ingress-nginx computes it
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;

events {
    worker_connections 16384;    # max-worker-connections
    multi_accept on;
    use epoll;
}

http {
    client_body_temp_path {{.Dir}}/nginx-tmp/body;
    proxy_temp_path       {{.Dir}}/nginx-tmp/proxy;
    fastcgi_temp_path     {{.Dir}}/nginx-tmp/fastcgi;
    uwsgi_temp_path       {{.Dir}}/nginx-tmp/uwsgi;
    scgi_temp_path        {{.Dir}}/nginx-tmp/scgi;

    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    reset_timedout_connection on;

    keepalive_timeout  {{.S.KeepAlive}}s;   # keep-alive
    keepalive_requests {{.S.KeepAliveReqs}};  # keep-alive-requests
    client_header_timeout 60s;
    client_body_timeout 60s;
    client_max_body_size 1m;

    map $http_x_request_id $req_id {
        default $http_x_request_id;
        ""      $request_id;
    }
    log_format upstreaminfo '{{.S.LogFormat}}';
    access_log {{.Dir}}/nginx-access.log upstreaminfo;

    upstream upstream_balancer {
{{- range .Backends}}
        server {{.}} max_fails=0;
{{- end}}
        keepalive {{.S.UpKeepalive}};          # upstream-keepalive-connections
        keepalive_time 1h;
        keepalive_timeout {{.S.UpKeepaliveTimeout}}s;     # upstream-keepalive-timeout
        keepalive_requests {{.S.UpKARqs}};  # upstream-keepalive-requests
    }

    server {
        listen {{.Listen}} default_server reuseport backlog=4096;
        server_name _;
        access_log off;
        location / { return 404; }
    }

    server {
        listen {{.Listen}};
        server_name {{.Host}};

        location / {
            set $proxy_upstream_name "upstream-default-bench-80";

            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $req_id;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Forwarded-Proto $scheme;

            proxy_connect_timeout 5s;
            proxy_send_timeout 60s;
            proxy_read_timeout 60s;
            proxy_buffering off;
            proxy_buffer_size 4k;
            proxy_buffers 4 4k;
            proxy_request_buffering on;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;

            proxy_pass http://upstream_balancer;
        }
    }
}
`

const haproxyConf = `# Rendered by bench/ingress: HAProxy set up like the seed's nginx (same
# timeouts, upstream connection reuse, headers and access log format).
global
    nbthread {{.Workers}}           # = worker-processes auto (the proxy CPU set)
    maxconn 8000                    # within this machine's open-file limit
    log stdout format raw local0

defaults
    mode http
    log global
    option http-keep-alive
    timeout connect 5s              # proxy-connect-timeout
    timeout client 60s              # client-body-timeout
    timeout http-request 60s        # client-header-timeout
    timeout http-keep-alive {{.S.KeepAlive}}s      # keep-alive
    timeout server 60s              # proxy-read-timeout
    retries 3                       # proxy-next-upstream-tries
    option redispatch               # proxy-next-upstream error timeout: next server
    http-reuse always               # nginx's keepalive pool: any idle upstream connection serves any request

frontend bench
    bind {{.Listen}}
    maxconn 8000
    unique-id-format %[uuid]
    http-request set-header X-Request-ID %[unique-id] unless { req.hdr(x-request-id) -m found }
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Port %[dst_port]
    http-request set-header X-Forwarded-Proto http
    http-request capture req.hdr(User-Agent) len 128
    http-request capture req.hdr(Referer) len 128
    # the seed's log-format-upstream, field by field
    log-format "%ci - - [%trl] \"%HM %HU %HV\" %ST %B \"%[capture.req.hdr(1)]\" \"%[capture.req.hdr(0)]\" %U %Ta [upstream-default-bench-80] %si:%sp %B %Tr %ST %[unique-id]"
    use_backend upstream-default-bench-80 if { req.hdr(host),field(1,:) -i {{.Host}} }
    default_backend default-404

backend upstream-default-bench-80
    balance roundrobin
    # upstream-keepalive-connections (split over the servers), upstream-keepalive-timeout
    default-server pool-max-conn {{.PerServerPool}} pool-purge-delay {{.S.UpKeepaliveTimeout}}s
{{- range $i, $b := .Backends}}
    server b{{inc $i}} {{$b}}
{{- end}}

backend default-404
    http-request return status 404
`

type confData struct {
	Workers       int
	Dir, Listen   string
	Host          string
	S             *seed
	Backends      []string
	PerServerPool int
}

func render(text string, d confData) (string, error) {
	t, err := template.New("").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(text)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (b *bench) confData(sd *seed) (confData, error) {
	workers, err := cpuCount(*flagProxyCPU)
	if err != nil {
		return confData{}, err
	}
	port, err := freePort("127.0.0.1")
	if err != nil {
		return confData{}, err
	}
	var be []string
	for _, ip := range b.backendIPs {
		be = append(be, fmt.Sprintf("%s:%d", ip, b.backendPort))
	}
	return confData{Workers: workers, Dir: b.tmp, Listen: fmt.Sprintf("127.0.0.1:%d", port), Host: host, S: sd,
		Backends: be, PerServerPool: (sd.UpKeepalive + len(be) - 1) / len(be)}, nil
}

func (b *bench) startNginx(ctx context.Context, t *target, sd *seed) error {
	d, err := b.confData(sd)
	if err != nil {
		return err
	}
	conf, err := render(nginxConf, d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.tmp, "nginx-tmp"), 0o755); err != nil {
		return err
	}
	path := filepath.Join(b.tmp, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	b.confs = append(b.confs, namedText{"nginx.conf", conf})
	if out, err := exec.CommandContext(ctx, "nginx", "-t", "-q", "-e", filepath.Join(b.tmp, "nginx-error.log"), "-c", path).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	t.AccessLog = filepath.Join(b.tmp, "nginx-access.log")
	p, err := b.start("nginx", *flagProxyCPU, os.Environ(), "", "nginx", "-e", filepath.Join(b.tmp, "nginx-error.log"), "-c", path)
	if err != nil {
		return err
	}
	t.proc = p
	t.URL = "http://" + d.Listen + "/"
	return waitHTTP(ctx, p, t.URL, host, 200, 10*time.Second)
}

func (b *bench) startHAProxy(ctx context.Context, t *target, sd *seed) error {
	d, err := b.confData(sd)
	if err != nil {
		return err
	}
	conf, err := render(haproxyConf, d)
	if err != nil {
		return err
	}
	path := filepath.Join(b.tmp, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	b.confs = append(b.confs, namedText{"haproxy.cfg", conf})
	if out, err := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c: %v\n%s", err, out)
	}
	t.AccessLog = filepath.Join(b.tmp, "haproxy-access.log")
	// -db: foreground; the access log goes to stdout, which is the log file.
	p, err := b.start("haproxy", *flagProxyCPU, os.Environ(), t.AccessLog, "haproxy", "-db", "-f", path)
	if err != nil {
		return err
	}
	t.proc = p
	t.URL = "http://" + d.Listen + "/"
	return waitHTTP(ctx, p, t.URL, host, 200, 10*time.Second)
}

type namedText struct{ Name, Text string }
