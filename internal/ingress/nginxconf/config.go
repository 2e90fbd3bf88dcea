package nginxconf

import (
	"crypto/tls"
	"time"
)

// DefaultLogFormatUpstream is ingress-nginx's default log-format-upstream.
const DefaultLogFormatUpstream = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id`

// Config is the typed subset of the ingress-nginx ConfigMap that fjord
// honours. The comment on each field names its ConfigMap key and the
// ingress-nginx default.
type Config struct {
	KeepAlive                    time.Duration // keep-alive, 75s
	KeepAliveRequests            int           // keep-alive-requests, 1000
	UpstreamKeepaliveConnections int           // upstream-keepalive-connections, 320 (0 disables)
	UpstreamKeepaliveTimeout     time.Duration // upstream-keepalive-timeout, 60s
	UpstreamKeepaliveRequests    int           // upstream-keepalive-requests, 10000
	WorkerProcesses              int           // worker-processes, "auto" = number of CPUs
	WorkerProcessesAuto          bool          // worker-processes was "auto" (or unset)

	LogFormatUpstream string     // log-format-upstream, DefaultLogFormatUpstream
	LogFormat         *LogFormat // LogFormatUpstream, compiled

	ProxyConnectTimeout time.Duration // proxy-connect-timeout, 5s
	ProxyReadTimeout    time.Duration // proxy-read-timeout, 60s
	ProxySendTimeout    time.Duration // proxy-send-timeout, 60s
	ProxyBodySize       int64         // proxy-body-size in bytes, 1m; 0 = unlimited

	ClientHeaderTimeout time.Duration // client-header-timeout, 60s
	ClientBodyTimeout   time.Duration // client-body-timeout, 60s

	// Request-head buffers, as nginx allocates them: the head is read into
	// one buffer of ClientHeaderBufferSize; lines that do not fit go to
	// at most LargeClientHeaderBuffers.Count buffers of .Size each, a line
	// never spanning two (HeadBuffers.Check).
	ClientHeaderBufferSize   int         // client-header-buffer-size, 1k
	LargeClientHeaderBuffers HeadBuffers // large-client-header-buffers, "4 8k"
	ClientBodyBufferSize     int64       // client-body-buffer-size, 8k: larger request bodies are streamed
	MaxWorkerConnections     int         // max-worker-connections, 16384; 0 = MaxWorkerOpenFiles*3/4
	MaxWorkerOpenFiles       int         // max-worker-open-files, 0 = RLIMIT_NOFILE-1024 (at least 1024)

	ProxyNextUpstream      NextUpstream // proxy-next-upstream, "error timeout"
	ProxyNextUpstreamTries int          // proxy-next-upstream-tries, 3; 0 = unlimited

	SSLProtocols []uint16 // ssl-protocols as crypto/tls versions, ascending; "TLSv1.2 TLSv1.3"
	SSLRedirect  bool     // ssl-redirect, true

	// The Server response header. ingress-nginx (since controller v0.40.0)
	// defaults server-tokens to false and then clears the header from every
	// response (more_clear_headers Server), the upstream's included; with
	// true it sends its own unless allow-backend-server-header passes the
	// upstream's.
	ServerTokens             bool // server-tokens, false
	AllowBackendServerHeader bool // allow-backend-server-header, false
}

// Defaults returns ingress-nginx's defaults; numCPU is what
// worker-processes "auto" resolves to.
func Defaults(numCPU int) Config {
	lf, err := Compile(DefaultLogFormatUpstream)
	if err != nil {
		panic("nginxconf: default log format does not compile: " + err.Error())
	}
	return Config{
		KeepAlive:                    75 * time.Second,
		KeepAliveRequests:            1000,
		UpstreamKeepaliveConnections: 320,
		UpstreamKeepaliveTimeout:     60 * time.Second,
		UpstreamKeepaliveRequests:    10000,
		WorkerProcesses:              max(numCPU, 1),
		WorkerProcessesAuto:          true,
		LogFormatUpstream:            DefaultLogFormatUpstream,
		LogFormat:                    lf,
		ProxyConnectTimeout:          5 * time.Second,
		ProxyReadTimeout:             60 * time.Second,
		ProxySendTimeout:             60 * time.Second,
		ProxyBodySize:                1 << 20,
		ClientHeaderTimeout:          60 * time.Second,
		ClientBodyTimeout:            60 * time.Second,
		ClientHeaderBufferSize:       1 << 10,
		LargeClientHeaderBuffers:     HeadBuffers{Count: 4, Size: 8 << 10},
		ClientBodyBufferSize:         8 << 10,
		MaxWorkerConnections:         16384,
		ProxyNextUpstream:            NextUpstream{Error: true, Timeout: true},
		ProxyNextUpstreamTries:       3,
		SSLProtocols:                 []uint16{tls.VersionTLS12, tls.VersionTLS13},
		SSLRedirect:                  true,
	}
}

// MaxConnections is the number of client connections served at once:
// worker-processes times max-worker-connections, where 0 means
// max-worker-open-files*3/4 and max-worker-open-files 0 means the open-file
// limit minus 1024, at least 1024, as ingress-nginx computes them. nofile
// is the process's RLIMIT_NOFILE. (nginx's worker_connections also count
// upstream connections; fjord counts client connections only.)
func (c *Config) MaxConnections(nofile uint64) int {
	perWorker := c.MaxWorkerConnections
	if perWorker == 0 {
		files := c.MaxWorkerOpenFiles
		if files == 0 {
			files = 1024
			if nofile > 2048 {
				files = int(min(nofile-1024, 1<<30))
			}
		}
		perWorker = files * 3 / 4
	}
	return max(c.WorkerProcesses, 1) * perWorker
}
