package nginxconf

import (
	"strings"
	"testing"
	"time"
)

func TestCompileErrors(t *testing.T) {
	cases := map[string]string{
		"$nope":                "unknown variable $nope",
		"[$remote_addr] $nope": "unknown variable $nope",
		"${nope}":              "unknown variable $nope",
		"$http_x_custom":       "unknown variable $http_x_custom",
		"$":                    "$ without a variable name",
		"a $ b":                "$ without a variable name",
		"${remote_addr":        "unterminated ${",
		"${}":                  "invalid variable name",
	}
	for in, want := range cases {
		_, err := Compile(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestRenderEmptyVarsLikeNginx(t *testing.T) {
	lf, err := Compile(DefaultLogFormatUpstream)
	if err != nil {
		t.Fatal(err)
	}
	want := `- - - [-] "-" 000 0 "-" "-" 0 0.000 [-] [-] - - - - -`
	if got := lf.Render(Vars{}); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRenderAllVariables(t *testing.T) {
	if _, err := Compile("$host$$"); err == nil {
		t.Fatal("$$ must not compile")
	}
	lf, err := Compile(`${scheme}://$host:$server_port $request_method $request_uri xff=$http_x_forwarded_for ` +
		`ref=$http_referer $namespace/$ingress_name $service_name:$service_port alt=$proxy_alternative_upstream_name.`)
	if err != nil {
		t.Fatal(err)
	}
	got := lf.Render(Vars{
		Scheme: "https", Host: "shop.example.com", ServerPort: "443", RequestMethod: "POST", RequestURI: "/cart?id=1",
		HTTPXForwardedFor: "1.2.3.4, 5.6.7.8", HTTPReferer: "https://x/", Namespace: "shop", IngressName: "web",
		ServiceName: "web", ServicePort: "80",
	})
	want := `https://shop.example.com:443 POST /cart?id=1 xff=1.2.3.4, 5.6.7.8 ref=https://x/ shop/web web:80 alt=-.`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRenderEscapes(t *testing.T) {
	lf, err := Compile(`"$http_user_agent" $remote_user`)
	if err != nil {
		t.Fatal(err)
	}
	got := lf.Render(Vars{HTTPUserAgent: "evil\"\n\\agent\x7fé", RemoteUser: "bob"})
	want := `"evil\x22\x0A\x5Cagent\x7F\xC3\xA9" bob`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRenderTimes(t *testing.T) {
	lf, err := Compile("$request_time|$upstream_response_time|$time_local|$status")
	if err != nil {
		t.Fatal(err)
	}
	got := lf.Render(Vars{
		RequestTime:          61*time.Second + 7*time.Millisecond + 999*time.Microsecond,
		UpstreamResponseTime: []time.Duration{0, 10 * time.Millisecond, -time.Second},
		TimeLocal:            time.Date(2026, 12, 1, 3, 4, 5, 0, time.FixedZone("", -(4*3600+1800))),
		Status:               7,
	})
	want := "61.007|0.000, 0.010, 0.000|01/Dec/2026:03:04:05 -0430|007"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestProxyUpstreamName(t *testing.T) {
	if got := ProxyUpstreamName("default", "echo", "http"); got != "upstream-default-echo-http" {
		t.Error(got)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		DefaultLogFormatUpstream, "", "$", "$$", "${", "${}", "${host}x", "$host$status", "a$b", "$remote_addr-",
		`"$request" \x $x`, "${request_time}${req_id}", "\xff$host\x00",
	} {
		f.Add(s)
	}
	vars := Vars{RemoteAddr: "1.2.3.4", Status: 200, Request: "GET / HTTP/1.1", UpstreamStatus: []int{502, 200},
		TimeLocal: time.Unix(0, 0).UTC(), RequestTime: time.Millisecond}
	f.Fuzz(func(t *testing.T, format string) {
		lf, err := Compile(format)
		if err != nil {
			return
		}
		if lf.String() != format {
			t.Fatalf("String() = %q, want %q", lf.String(), format)
		}
		// A format without variables renders as itself.
		if !strings.Contains(format, "$") && lf.Render(vars) != format {
			t.Fatalf("literal format %q rendered as %q", format, lf.Render(vars))
		}
		again, err := Compile(lf.String())
		if err != nil || again.Render(vars) != lf.Render(vars) {
			t.Fatalf("recompile of %q differs: %v", format, err)
		}
	})
}
