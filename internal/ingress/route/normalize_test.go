package route

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// The path-confusion class. want and the errors are what nginx 1.22.1
// (merge_slashes on, Linux) put in $uri or answered with 400 for the same
// request-targets, checked against a real nginx on loopback (docs/ingress.md).
var normalizeCases = []struct {
	in, want   string
	structural bool
	err        error
}{
	{"/", "/", false, nil},
	{"/api", "/api", false, nil},
	{"/api/x", "/api/x", false, nil},
	{"/api/../internal", "/internal", true, nil},
	{"/api/%2e%2e/internal", "/internal", true, nil},
	{"/api/%2E%2E/internal", "/internal", true, nil},
	{"/api/.%2e/internal", "/internal", true, nil},
	{"/api/..%2finternal", "/internal", true, nil},
	{"/internal%2F..%2Fapi", "/api", true, nil},
	{"/api/x/../../internal", "/internal", true, nil},
	{"//api", "/api", true, nil},
	{"//api/x", "/api/x", true, nil},
	{"/%2fapi", "/api", true, nil},
	{"/api//", "/api/", true, nil},
	{"/api/./x", "/api/x", true, nil},
	{"/api/%2e/x", "/api/x", true, nil},
	{"/./api", "/api", true, nil},
	{"/api/.", "/api/", true, nil},
	{"/api/%2E", "/api/", true, nil},
	{"/api/..", "/", true, nil},
	{"/api/%2e%2e", "/", true, nil},
	{"/api/x/..", "/api/", true, nil},
	{"/api/x/%2e", "/api/x/", true, nil},
	{"/api/.../../x", "/api/x", true, nil},
	{"/api/x;a/../y", "/api/y", true, nil},
	// Decoding alone is not structural: the client's form may be forwarded.
	{"/api%2Fx", "/api/x", false, nil},
	{"/api%2fx", "/api/x", false, nil},
	{"/api/%2f", "/api/", true, nil}, // decodes to "/api//"
	{"/ap%69/x", "/api/x", false, nil},
	{"/api/%7e", "/api/~", false, nil},
	{"/api/%20", "/api/ ", false, nil},
	{"/api/%C3%A9", "/api/\xc3\xa9", false, nil},
	{"/api/%23x", "/api/#x", false, nil},
	{"/api/%25", "/api/%", false, nil},
	{"/api/%252e%252e/x", "/api/%2e%2e/x", false, nil}, // decoded once only
	{"/api/%80", "/api/\x80", false, nil},
	// Ordinary characters.
	{"/api/...", "/api/...", false, nil},
	{"/api/..../x", "/api/..../x", false, nil},
	{"/api./x", "/api./x", false, nil},
	{"/api/%2e%2e%2e", "/api/...", false, nil},
	{`/api\..\internal`, `/api\..\internal`, false, nil},
	{`/api/\x`, `/api/\x`, false, nil},
	{"/api;x", "/api;x", false, nil},
	{"/api/..;/internal", "/api/..;/internal", false, nil},
	{"/API/x", "/API/x", false, nil},
	// Refused (400).
	{"/../x", "", false, ErrAboveRoot},
	{"/..", "", false, ErrAboveRoot},
	{"/%2e%2e/x", "", false, ErrAboveRoot},
	{"/a/b/c/../../../../x", "", false, ErrAboveRoot},
	{"/api/%2e%2e%2f..%2finternal", "", false, ErrAboveRoot},
	{"/api/%00", "", false, ErrNULInPath},
	{"/api/x%", "", false, ErrBadEscape},
	{"/api/%2", "", false, ErrBadEscape},
	{"/api/x%zz", "", false, ErrBadEscape},
	{"/api/%u002e", "", false, ErrBadEscape},
	{"", "", false, ErrNotAbsolute},
	{"api", "", false, ErrNotAbsolute},
}

func TestNormalizePath(t *testing.T) {
	for _, tc := range normalizeCases {
		got, structural, err := NormalizePath(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want || structural != tc.structural {
			t.Errorf("NormalizePath(%q) = %q, %v, %v; want %q, %v, %v", tc.in, got, structural, err, tc.want, tc.structural, tc.err)
		}
	}
}

// TestPathConfusion routes the class through a Table with only an /api
// rule (Prefix) and a default backend: nothing outside /api after
// normalisation reaches api, and everything inside does.
func TestPathConfusion(t *testing.T) {
	in := ing("default", "web", 0, rule("", p{"/api", &prefix, "api", 0}))
	in.Spec.DefaultBackend = svcBackend("fallback", 80)
	tbl := Build([]*networkingv1.Ingress{in}, "fjord", false)
	for _, tc := range normalizeCases {
		if tc.err != nil {
			continue
		}
		be, ok := tbl.Match("h", tc.want)
		inAPI := tc.want == "/api" || strings.HasPrefix(tc.want, "/api/")
		if !ok || (be.Service == "api") != inAPI {
			t.Errorf("%q (normalised %q) went to %q; want api=%v", tc.in, tc.want, be.Service, inAPI)
		}
	}
}

// FuzzNormalizePath checks the properties routing and forwarding rely on:
// the result is a normalised path (no empty, "." or ".." segment), it is
// a fixed point, EscapePath of it decodes back to it and normalises to
// itself without structural change, and an input with no escapes and no
// structural change comes back unchanged.
func FuzzNormalizePath(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, structural, err := NormalizePath(in)
		if err != nil {
			return
		}
		if got == "" || got[0] != '/' {
			t.Fatalf("%q: result %q does not begin with /", in, got)
		}
		for _, seg := range strings.Split(got[1:], "/")[:max(0, strings.Count(got[1:], "/"))] {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q: result %q has segment %q", in, got, seg)
			}
		}
		if last := got[strings.LastIndexByte(got, '/')+1:]; last == "." || last == ".." {
			t.Fatalf("%q: result %q ends in a dot segment", in, got)
		}
		esc := EscapePath(got)
		again, structural2, err := NormalizePath(esc)
		if err != nil || again != got || structural2 {
			t.Fatalf("%q: EscapePath(%q) = %q normalises to %q, %v, %v", in, got, esc, again, structural2, err)
		}
		if dec, err := url.PathUnescape(esc); err != nil || dec != got {
			t.Fatalf("%q: %q decodes to %q, %v", in, esc, dec, err)
		}
		if !structural && !strings.Contains(in, "%") && got != in {
			t.Fatalf("%q: changed to %q without escapes or structure", in, got)
		}
	})
}
