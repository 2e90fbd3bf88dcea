package cli

import (
	"strings"
	"testing"
)

func TestHelperListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		":6060":           "127.0.0.1:6060",
		"127.0.0.1:6060":  "127.0.0.1:6060",
		"198.18.0.11:80":  "198.18.0.11:80",
		"0.0.0.0:10254":   "0.0.0.0:10254", // asked for explicitly
		"[::]:10254":      "[::]:10254",
		"[::1]:10249":     "[::1]:10249",
		"localhost:10249": "localhost:10249",
	} {
		got, err := helperListenAddr("--x", in)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"6060", "host.example:80", "1.2.3.4:http", "1.2.3.4:70000", ":"} {
		if _, err := helperListenAddr("--debug-addr", bad); err == nil || !strings.HasPrefix(err.Error(), "--debug-addr ") {
			t.Errorf("%q: %v, want an error naming the flag", bad, err)
		}
	}
}
