package nginxconf

import (
	"fmt"
	"time"
)

// Vars holds the values of the nginx variables a log format may use, for
// one request. Empty strings, a zero time and empty lists render as "-",
// as nginx does for unset variables. Upstream lists hold one entry per
// attempt and render joined by ", " like nginx.
type Vars struct {
	RemoteAddr    string        // $remote_addr
	RemoteUser    string        // $remote_user
	TimeLocal     time.Time     // $time_local, rendered as 02/Jan/2006:15:04:05 -0700 in its own location
	Request       string        // $request, e.g. "GET /x HTTP/1.1"
	Status        int           // $status; 0 renders as 000 like nginx
	BodyBytesSent int64         // $body_bytes_sent
	HTTPReferer   string        // $http_referer
	HTTPUserAgent string        // $http_user_agent
	RequestLength int64         // $request_length
	RequestTime   time.Duration // $request_time, seconds with millisecond resolution

	ProxyUpstreamName            string // $proxy_upstream_name, see ProxyUpstreamName
	ProxyAlternativeUpstreamName string // $proxy_alternative_upstream_name (canary), usually empty

	UpstreamAddr           []string        // $upstream_addr
	UpstreamResponseLength []int64         // $upstream_response_length
	UpstreamResponseTime   []time.Duration // $upstream_response_time
	UpstreamStatus         []int           // $upstream_status

	ReqID             string // $req_id
	Host              string // $host
	ServerPort        string // $server_port
	Scheme            string // $scheme
	RequestMethod     string // $request_method
	RequestURI        string // $request_uri
	HTTPXForwardedFor string // $http_x_forwarded_for

	Namespace   string // $namespace
	IngressName string // $ingress_name
	ServiceName string // $service_name
	ServicePort string // $service_port
}

// ProxyUpstreamName returns ingress-nginx's upstream name for a Service
// port: upstream-<namespace>-<service>-<port>.
func ProxyUpstreamName(namespace, service, port string) string {
	return fmt.Sprintf("upstream-%s-%s-%s", namespace, service, port)
}
