package nginxconf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Parse reads ConfigMap data into a Config, starting from Defaults(numCPU).
// ignored lists the keys fjord does not know, sorted, each once. On a bad
// value Parse returns an error naming the key and value and no Config;
// when several values are bad, the first key in sorted order is reported.
func Parse(data map[string]string, numCPU int) (cfg Config, ignored []string, err error) {
	cfg = Defaults(numCPU)
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(data[k])
		known, err := cfg.set(k, v, numCPU)
		if err != nil {
			return Config{}, nil, fmt.Errorf("%s: %q %w", k, data[k], err)
		}
		if !known {
			ignored = append(ignored, k)
		}
	}
	return cfg, ignored, nil
}

// set applies one key. It reports false for an unknown key; errors are
// phrased to follow `key: "value"`.
func (c *Config) set(key, v string, numCPU int) (known bool, err error) {
	switch key {
	case "keep-alive":
		c.KeepAlive, err = parseTime(v)
	case "keep-alive-requests":
		c.KeepAliveRequests, err = parseCount(v)
	case "upstream-keepalive-connections":
		c.UpstreamKeepaliveConnections, err = parseCount(v)
	case "upstream-keepalive-timeout":
		c.UpstreamKeepaliveTimeout, err = parseTime(v)
	case "upstream-keepalive-requests":
		c.UpstreamKeepaliveRequests, err = parseCount(v)
	case "worker-processes":
		c.WorkerProcesses, err = parseWorkers(v, numCPU)
		c.WorkerProcessesAuto = v == "auto"
	case "log-format-upstream":
		var lf *LogFormat
		if lf, err = Compile(v); err == nil {
			c.LogFormatUpstream, c.LogFormat = v, lf
		} else {
			err = fmt.Errorf("is not a valid log format: %w", err)
		}
	case "proxy-connect-timeout":
		c.ProxyConnectTimeout, err = parseTime(v)
	case "proxy-read-timeout":
		c.ProxyReadTimeout, err = parseTime(v)
	case "proxy-send-timeout":
		c.ProxySendTimeout, err = parseTime(v)
	case "proxy-body-size":
		c.ProxyBodySize, err = parseSize(v)
	case "client-header-timeout":
		c.ClientHeaderTimeout, err = parseTime(v)
	case "client-body-timeout":
		c.ClientBodyTimeout, err = parseTime(v)
	case "client-header-buffer-size":
		c.ClientHeaderBufferSize, err = parseBufferSize(v)
	case "large-client-header-buffers":
		c.LargeClientHeaderBuffers, err = parseHeadBuffers(v)
	case "client-body-buffer-size":
		var n int
		n, err = parseBufferSize(v)
		c.ClientBodyBufferSize = int64(n)
	case "max-worker-connections":
		c.MaxWorkerConnections, err = parseCount(v)
	case "max-worker-open-files":
		c.MaxWorkerOpenFiles, err = parseCount(v)
	case "proxy-next-upstream":
		c.ProxyNextUpstream, err = parseNextUpstream(v)
	case "proxy-next-upstream-tries":
		c.ProxyNextUpstreamTries, err = parseCount(v)
	case "ssl-protocols":
		c.SSLProtocols, err = parseSSLProtocols(v)
	case "ssl-redirect":
		c.SSLRedirect, err = parseBool(v)
	case "server-tokens":
		c.ServerTokens, err = parseBool(v)
	case "allow-backend-server-header":
		c.AllowBackendServerHeader, err = parseBool(v)
	default:
		return false, nil
	}
	return true, err
}

// parseCount parses a non-negative decimal integer.
func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("is not a non-negative integer")
	}
	return n, nil
}

// parseWorkers parses worker-processes: "auto" or a positive integer.
func parseWorkers(v string, numCPU int) (int, error) {
	if v == "auto" {
		return max(numCPU, 1), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf(`is neither "auto" nor a positive integer`)
	}
	return n, nil
}

// parseBool accepts the spellings of strconv.ParseBool ("true", "false",
// "1", "0", ...), like ingress-nginx's weakly typed decoding.
func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("is not a boolean (true or false)")
	}
	return b, nil
}
