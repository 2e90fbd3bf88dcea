package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/ingress/route"
)

// parseString reads and parses one request head from s.
func parseString(s string) (*request, *parseError, error) {
	br := bufio.NewReaderSize(strings.NewReader(s), 64)
	r := &request{}
	raw, err := readHead(br, nil, &testHeadLimits)
	if err != nil {
		return nil, nil, err
	}
	r.raw = raw
	return r, r.parse(), nil
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		status   int // 0: accepted
		check    func(*request) string
	}{
		{"simple", "GET /x?y=1 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: t\r\n\r\n", 0, func(r *request) string {
			if string(r.method) != "GET" || string(r.target) != "/x?y=1" || string(r.host) != "h.example" || r.minor != 1 ||
				r.close || r.contentLength != -1 || r.chunked || string(r.line) != "GET /x?y=1 HTTP/1.1" || string(r.get(hUserAgent)) != "t" {
				return "fields"
			}
			return ""
		}},
		{"bare LF and leading CRLF", "\r\nGET / HTTP/1.1\nHost: a\n\n", 0, nil},
		{"header whitespace trimmed", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \t v \t\r\n\r\n", 0, func(r *request) string {
			if string(r.headers[1].value) != "v" {
				return "value " + string(r.headers[1].value)
			}
			return ""
		}},
		{"content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", 0, func(r *request) string {
			if r.contentLength != 12 || !r.hasBody() {
				return "length"
			}
			return ""
		}},
		{"same content-length twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 0, nil},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", 0, func(r *request) string {
			if !r.chunked || !r.hasBody() {
				return "chunked"
			}
			return ""
		}},
		{"connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", 0, func(r *request) string {
			if !r.close {
				return "close"
			}
			return ""
		}},
		{"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 0, func(r *request) string {
			if !r.close || r.minor != 0 {
				return "close"
			}
			return ""
		}},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, func(r *request) string {
			if r.close {
				return "keep-alive"
			}
			return ""
		}},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0, func(r *request) string {
			if !r.upgrade {
				return "upgrade"
			}
			return ""
		}},
		{"upgrade header alone is no upgrade", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 0, func(r *request) string {
			if r.upgrade {
				return "upgrade"
			}
			return ""
		}},
		{"two connection headers", "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a\r\nConnection: close\r\n\r\n", 0, func(r *request) string {
			if !r.close || !r.listedInConnection([]byte("X-A")) {
				return "tokens " + string(r.connTokens)
			}
			return ""
		}},
		{"expect", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", 0, func(r *request) string {
			if !r.expect100 {
				return "expect"
			}
			return ""
		}},
		{"absolute form", "GET http://a.example/p?q HTTP/1.1\r\nHost: b\r\n\r\n", 0, nil},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", 400, nil},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, nil},
		{"cl and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"differing cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, nil},
		{"signed cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400, nil},
		{"gzip te", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, nil},
		{"te in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, nil},
		{"folding", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400, nil},
		{"ctl in value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\x01\r\n\r\n", 400, nil},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"http/2 line", "PRI * HTTP/2.0\r\n\r\n", 505, nil},
		{"unknown expect", "GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", 417, nil},
	} {
		r, perr, err := parseString(tc.in)
		if err != nil {
			t.Errorf("%s: read: %v", tc.name, err)
			continue
		}
		got := 0
		if perr != nil {
			got = perr.status
		}
		if got != tc.status {
			t.Errorf("%s: status %d (%v), want %d", tc.name, got, perr, tc.status)
			continue
		}
		if got == 0 && tc.check != nil {
			if msg := tc.check(r); msg != "" {
				t.Errorf("%s: %s: %+v", tc.name, msg, r)
			}
		}
	}
}

// testHeadLimits are ingress-nginx's defaults: client-header-buffer-size
// 1k, large-client-header-buffers 4 8k.
var testHeadLimits = headLimits{first: 1 << 10, size: 8 << 10, count: 4}

// TestReadHeadLimits: the boundaries are nginx 1.22.1's with the same
// buffers (docs/ingress.md): a line, with its CRLF, must fit in 8 KiB; the
// lines of a head must pack into the first buffer and four large ones, a
// line never spanning two.
func TestReadHeadLimits(t *testing.T) {
	reqLine := func(n int) string {
		return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1")) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	}
	hdrLine := func(n int) string { return "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("b", n-3) + "\r\n\r\n" }
	many := func(count, size int) string {
		var b strings.Builder
		b.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
		for i := range count {
			fmt.Fprintf(&b, "X%d: %s\r\n", i, strings.Repeat("c", size))
		}
		b.WriteString("Connection: close\r\n\r\n")
		return b.String()
	}
	for _, tc := range []struct {
		name string
		head string
		want error
	}{
		{"request line of 8190", reqLine(8190), nil},
		{"request line of 8191", reqLine(8191), errRequestLineBig},
		{"request line of 100k", reqLine(100 << 10), errRequestLineBig},
		{"header line of 8190", hdrLine(8190), nil},
		{"header line of 8191", hdrLine(8191), errHeadTooLarge},
		{"header line of 1M", hdrLine(1 << 20), errHeadTooLarge},
		{"8 headers of 4000 (32094 bytes)", many(8, 4000), nil},
		{"9 headers of 4000", many(9, 4000), errHeadTooLarge},
		{"4 headers of 8000", many(4, 8000), nil},
		{"5 headers of 8000", many(5, 8000), errHeadTooLarge},
	} {
		for _, bufSize := range []int{64, 8 << 10} {
			br := bufio.NewReaderSize(strings.NewReader(tc.head), bufSize)
			_, err := readHead(br, nil, &testHeadLimits)
			if err != tc.want {
				t.Errorf("%s (reader of %d): %v, want %v", tc.name, bufSize, err, tc.want)
			}
		}
	}
	big := "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n"
	if _, err := readHead(bufio.NewReader(strings.NewReader(big)), nil, nil); err != errHeadTooLarge {
		t.Errorf("response head over %d bytes: %v, want errHeadTooLarge", maxHeadBytes, err)
	}
	if _, _, err := parseString("GET / HTTP/1.1\r\nHost: a\r\n"); err == nil {
		t.Error("truncated head was accepted")
	}
}

func TestRequestPath(t *testing.T) {
	for _, tc := range []struct{ target, path, host, fwd string }{
		{"/a/b?c=d", "/a/b", "", "/a/b?c=d"},
		{"/a%2Fb%20c", "/a/b c", "", "/a%2Fb%20c"},
		{"/a/./b/../c?q#f", "/a/c", "", "/a/c?q"},
		{"/a#f", "/a", "", "/a"},
		{"http://h.example:8080/p?q", "/p", "h.example:8080", "/p?q"},
		{"http://h.example:8080?q", "/", "h.example:8080", "/?q"},
		{"http://h//p", "/p", "h", "/p"},
	} {
		p, h, fwd, ok := requestPath([]byte(tc.target))
		if !ok || p != tc.path || h != tc.host || string(fwd) != tc.fwd {
			t.Errorf("%q: %q %q %q %v, want %q %q %q", tc.target, p, h, fwd, ok, tc.path, tc.host, tc.fwd)
		}
	}
	for _, bad := range []string{"/a%zz", "relative", "http://", "*", "/../a", "/a/%00"} {
		if _, _, _, ok := requestPath([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := string(upstreamTarget([]byte("http://h/p?q"))); got != "/p?q" {
		t.Errorf("upstream target of absolute form: %q", got)
	}
}

// FuzzParseRequest checks the request-head parser against net/http's:
// whatever both accept, they must frame the same way (method, Host,
// Content-Length, chunked), so the proxy and a net/http upstream can
// never disagree about where a request ends. It also checks that the
// target sent upstream means the path that was routed.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET http://h/p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
		"GET /api/%2e%2e//internal/./x?q=/../ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://h//a%2F..%2Fb#f HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, perr, err := parseString(in)
		if err != nil || perr != nil {
			return
		}
		if !bytes.HasPrefix(r.raw, r.line) || len(r.method) == 0 || r.contentLength < -1 {
			t.Fatalf("inconsistent parse of %q: %+v", in, r)
		}
		if r.chunked && r.contentLength >= 0 {
			t.Fatalf("%q: both chunked and Content-Length", in)
		}
		// What is sent upstream normalises, without structural change, to
		// what was matched: the upstream sees the path the routing saw.
		if path, _, fwd, ok := requestPath(r.target); ok {
			sent, _, _ := strings.Cut(string(fwd), "?")
			n, structural, err := route.NormalizePath(sent)
			if err != nil || n != path || structural {
				t.Fatalf("%q: routed %q but sent %q (normalises to %q, %v, %v)", in, path, fwd, n, structural, err)
			}
		}
		std, err := http.ReadRequest(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return // net/http is stricter here (e.g. the URI); fine
		}
		if std.Method != string(r.method) || std.RequestURI != string(r.target) {
			t.Fatalf("%q: method/target %q %q vs net/http %q %q", in, r.method, r.target, std.Method, std.RequestURI)
		}
		stdChunked := len(std.TransferEncoding) > 0
		if stdChunked != r.chunked {
			t.Fatalf("%q: chunked %v vs net/http %v", in, r.chunked, stdChunked)
		}
		if !r.chunked && max(r.contentLength, 0) != std.ContentLength {
			t.Fatalf("%q: Content-Length %d vs net/http %d", in, r.contentLength, std.ContentLength)
		}
		if r.target[0] == '/' && string(r.host) != std.Host {
			t.Fatalf("%q: Host %q vs net/http %q", in, r.host, std.Host)
		}
	})
}
