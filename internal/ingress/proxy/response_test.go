package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		head     bool
		ok       bool
		status   int
		length   int64
		chunked  bool
		close    bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, true, 200, 5, false, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", false, true, 204, 0, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, true, 200, -1, true, false},
		{"to close", "HTTP/1.1 200 OK\r\n\r\n", false, true, 200, -1, false, true},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, true, 200, 0, false, false},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, true, 304, 0, false, false},
		{"connection close", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", false, true, 200, 1, false, true},
		{"1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, true, 200, 1, false, true},
		{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", false, true, 200, 1, false, false},
		{"cl and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false, true, 200, -1, true, true},
		{"differing cl", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, false, 0, 0, false, false},
		{"http/2", "HTTP/2 200\r\n\r\n", false, false, 0, 0, false, false},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, false, 0, 0, false, false},
		{"garbage", "hello\r\n\r\n", false, false, 0, 0, false, false},
	} {
		r := &response{raw: []byte(tc.in)}
		ok := r.parse(tc.head)
		if ok != tc.ok {
			t.Errorf("%s: ok %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if ok && (r.status != tc.status || r.contentLength != tc.length || r.chunked != tc.chunked || r.close != tc.close) {
			t.Errorf("%s: status %d length %d chunked %v close %v; want %d %d %v %v",
				tc.name, r.status, r.contentLength, r.chunked, r.close, tc.status, tc.length, tc.chunked, tc.close)
		}
	}
}

// FuzzParseResponse checks the response-head parser against net/http's:
// whatever both accept, they must frame the body the same way.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		raw, err := readHead(bufio.NewReader(strings.NewReader(in)), nil, nil)
		if err != nil {
			return
		}
		r := &response{raw: raw}
		if !r.parse(false) {
			return
		}
		if r.chunked && r.contentLength >= 0 {
			t.Fatalf("%q: both chunked and Content-Length", in)
		}
		std, err := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), nil)
		if err != nil {
			return
		}
		if std.StatusCode != r.status {
			t.Fatalf("%q: status %d vs net/http %d", in, r.status, std.StatusCode)
		}
		if r.status >= 100 && r.status < 200 {
			// A 1xx answer has no body whatever its headers say (RFC 9112
			// 6.3); net/http still reports the framing headers it saw.
			return
		}
		stdChunked := len(std.TransferEncoding) > 0 && std.TransferEncoding[0] == "chunked"
		if stdChunked != r.chunked {
			t.Fatalf("%q: chunked %v vs net/http %v", in, r.chunked, stdChunked)
		}
		if !r.chunked && !r.close && std.ContentLength != r.contentLength {
			t.Fatalf("%q: Content-Length %d vs net/http %d", in, r.contentLength, std.ContentLength)
		}
	})
}
