package route

import (
	"fmt"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	exact    = networkingv1.PathTypeExact
	prefix   = networkingv1.PathTypePrefix
	implSpec = networkingv1.PathTypeImplementationSpecific
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ing builds an Ingress in namespace ns created age minutes after epoch.
func ing(ns, name string, age int, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	class := "fjord"
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         ns,
			Name:              name,
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute)),
		},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, Rules: rules},
	}
}

type p struct {
	path string
	typ  *networkingv1.PathType
	svc  string
	port int32
}

func rule(host string, ps ...p) networkingv1.IngressRule {
	r := networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
	for _, x := range ps {
		port := x.port
		if port == 0 {
			port = 80
		}
		r.HTTP.Paths = append(r.HTTP.Paths, networkingv1.HTTPIngressPath{
			Path: x.path, PathType: x.typ,
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: x.svc, Port: networkingv1.ServiceBackendPort{Number: port}}},
		})
	}
	return r
}

func svcBackend(name string, port int32) *networkingv1.IngressBackend {
	return &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: name, Port: networkingv1.ServiceBackendPort{Number: port}}}
}

type req struct {
	host, path string
	want       string // service name, "" = no match
}

func check(t *testing.T, tb *Table, cases []req) {
	t.Helper()
	for _, c := range cases {
		b, ok := tb.Match(c.host, c.path)
		got := ""
		if ok {
			got = b.Service
		}
		if got != c.want {
			t.Errorf("Match(%q, %q) = %q (ok=%v), want %q", c.host, c.path, got, ok, c.want)
		}
	}
}

func TestPathTypes(t *testing.T) {
	tb := Build([]*networkingv1.Ingress{ing("ns", "a", 0, rule("foo.com",
		p{"/", &prefix, "root", 0},
		p{"/foo", &prefix, "foo-prefix", 0},
		p{"/foo", &exact, "foo-exact", 0},
		p{"/foo/bar/", &prefix, "foobar-prefix", 0},
		p{"/foo/bar/baz", &exact, "baz-exact", 0},
		p{"/exact-only", &exact, "exact-only", 0},
		p{"/exact-slash/", &exact, "exact-slash", 0},
		p{"/impl", &implSpec, "impl", 0},
		p{"/impl/deep", nil, "impl-nil", 0},
		p{"/aaa/bbb", &prefix, "ab", 0},
	))}, "fjord", false)
	if len(tb.Conflicts)+len(tb.Skipped) != 0 {
		t.Fatalf("unexpected conflicts %v skipped %v", tb.Conflicts, tb.Skipped)
	}
	check(t, tb, []req{
		{"foo.com", "/", "root"},
		{"foo.com", "", "root"},
		{"foo.com", "/anything/else", "root"},
		{"foo.com", "/foo", "foo-exact"},         // Exact beats Prefix at equal length
		{"foo.com", "/foo/", "foo-prefix"},       // trailing slash: Exact "/foo" does not match
		{"foo.com", "/foo/x", "foo-prefix"},      // element-wise prefix
		{"foo.com", "/foobar", "root"},           // not element-wise
		{"foo.com", "/foo/bar", "foobar-prefix"}, // "/foo/bar/" prefix ignores its trailing slash
		{"foo.com", "/foo/bar/", "foobar-prefix"},
		{"foo.com", "/foo/bar/qux", "foobar-prefix"},
		{"foo.com", "/foo/barqux", "foo-prefix"},
		{"foo.com", "/foo/bar/baz", "baz-exact"},
		{"foo.com", "/foo/bar/baz/", "foobar-prefix"},
		{"foo.com", "/foo/bar/baz/x", "foobar-prefix"},
		{"foo.com", "/exact-only", "exact-only"},
		{"foo.com", "/exact-only/", "root"},
		{"foo.com", "/exact-only/x", "root"},
		{"foo.com", "/Exact-only", "root"}, // paths are case-sensitive
		{"foo.com", "/exact-slash/", "exact-slash"},
		{"foo.com", "/exact-slash", "root"},
		{"foo.com", "/impl", "impl"},
		{"foo.com", "/impl/x", "impl"},
		{"foo.com", "/implx", "root"},
		{"foo.com", "/impl/deep/er", "impl-nil"},
		{"foo.com", "/aaa", "root"},
		{"foo.com", "/aaa/bbb/ccc", "ab"},
		{"foo.com", "//foo", "root"},
		{"foo.com", "foo", "foo-exact"}, // missing leading slash is added
	})
}

func TestHosts(t *testing.T) {
	tb := Build([]*networkingv1.Ingress{
		ing("ns", "a", 0,
			rule("foo.com", p{"/", &prefix, "foo", 0}),
			rule("*.foo.com", p{"/", &prefix, "wild-foo", 0}),
			rule("bar.foo.com", p{"/api", &prefix, "bar-api", 0}),
			rule("*.bar.foo.com", p{"/", &prefix, "wild-bar", 0}),
			rule("MiXeD.Example.COM", p{"/", &prefix, "mixed", 0}),
			rule("", p{"/", &prefix, "nohost", 0}, p{"/only", &exact, "nohost-only", 0}),
		),
	}, "fjord", false)
	check(t, tb, []req{
		{"foo.com", "/x", "foo"},
		{"FOO.com", "/x", "foo"},
		{"foo.com:8080", "/x", "foo"},
		{"foo.com.", "/x", "foo"},
		{"a.foo.com", "/x", "wild-foo"},
		{"A.Foo.Com:443", "/x", "wild-foo"},
		{"bar.foo.com", "/api/v1", "bar-api"}, // exact host beats wildcard
		{"bar.foo.com", "/other", ""},         // exact host chosen, no fall-through to wildcard or no-host
		{"x.bar.foo.com", "/", "wild-bar"},    // one label under bar.foo.com
		{"y.x.bar.foo.com", "/", "nohost"},    // wildcard matches one label only
		{"a.b.foo.com", "/", "nohost"},        // two labels: not *.foo.com
		{"mixed.example.com", "/", "mixed"},
		{"other.org", "/", "nohost"},
		{"", "/only", "nohost-only"},
		{"1.2.3.4", "/", "nohost"},
		{"[::1]:80", "/", "nohost"},
		{"com", "/", "nohost"},
		{".foo.com", "/", "nohost"},
	})
}

func TestWildcardDoesNotMatchApex(t *testing.T) {
	tb := Build([]*networkingv1.Ingress{ing("ns", "a", 0, rule("*.foo.com", p{"/", &prefix, "wild", 0}))}, "fjord", false)
	check(t, tb, []req{
		{"foo.com", "/", ""},
		{"a.foo.com", "/", "wild"},
		{"a.b.foo.com", "/", ""},
		{"afoo.com", "/", ""},
	})
}

func TestConflictsAcrossIngresses(t *testing.T) {
	old := ing("ns1", "old", 0,
		rule("foo.com", p{"/", &prefix, "old-root", 0}, p{"/api", &exact, "old-api", 0}))
	young := ing("ns2", "young", 5,
		rule("foo.com",
			p{"/", &prefix, "young-root", 0},    // conflict
			p{"/api", &prefix, "young-api", 0},  // different type: no conflict
			p{"/api", &exact, "young-api-x", 0}, // conflict
			p{"/new", &prefix, "young-new", 0}))
	// Same age as young, namespace sorts before: wins over young.
	tie := ing("ns1", "tie", 5, rule("foo.com", p{"/new/", &implSpec, "tie-new", 0}))
	for _, order := range [][]*networkingv1.Ingress{{old, young, tie}, {young, tie, old}, {tie, young, old}} {
		tb := Build(order, "fjord", false)
		check(t, tb, []req{
			{"foo.com", "/", "old-root"},
			{"foo.com", "/api", "old-api"},
			{"foo.com", "/api/x", "young-api"},
			{"foo.com", "/new/x", "tie-new"},
		})
		want := []string{
			`ns2/young: host "foo.com" path "/" (Prefix) ignored, already defined by older ingress ns1/old`,
			`ns2/young: host "foo.com" path "/api" (Exact) ignored, already defined by older ingress ns1/old`,
			`ns2/young: host "foo.com" path "/new" (Prefix) ignored, already defined by older ingress ns1/tie`,
		}
		if strings.Join(tb.Conflicts, "\n") != strings.Join(want, "\n") {
			t.Errorf("conflicts:\n%s\nwant:\n%s", strings.Join(tb.Conflicts, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestDuplicateWithinIngressIsSkippedNotConflict(t *testing.T) {
	tb := Build([]*networkingv1.Ingress{ing("ns", "a", 0,
		rule("foo.com", p{"/x", &prefix, "first", 0}, p{"/x/", &prefix, "second", 0}))}, "fjord", false)
	check(t, tb, []req{{"foo.com", "/x", "first"}})
	if len(tb.Conflicts) != 0 || len(tb.Skipped) != 1 {
		t.Errorf("conflicts %v skipped %v", tb.Conflicts, tb.Skipped)
	}
}

func TestDefaultBackend(t *testing.T) {
	a := ing("ns", "a", 10, rule("foo.com", p{"/api", &prefix, "api", 0}))
	a.Spec.DefaultBackend = svcBackend("default-young", 8080)
	b := ing("ns", "b", 1)
	b.Spec.DefaultBackend = svcBackend("default-old", 80)
	tb := Build([]*networkingv1.Ingress{a, b}, "fjord", false)
	check(t, tb, []req{
		{"foo.com", "/api", "api"},
		{"foo.com", "/other", "default-old"},
		{"bar.com", "/", "default-old"},
		{"", "", "default-old"},
	})
	d, _ := tb.Match("x", "/")
	if d != (Backend{Namespace: "ns", Service: "default-old", Port: Port{Number: 80}, IngressName: "b"}) {
		t.Errorf("default backend = %+v", d)
	}
	if len(tb.Conflicts) != 1 || !strings.Contains(tb.Conflicts[0], "ns/a: defaultBackend ignored") {
		t.Errorf("conflicts = %v", tb.Conflicts)
	}
	// Without b, a's default applies.
	tb = Build([]*networkingv1.Ingress{a}, "fjord", false)
	check(t, tb, []req{{"bar.com", "/", "default-young"}})
	// No default: no match.
	tb = Build([]*networkingv1.Ingress{ing("ns", "c", 0, rule("foo.com", p{"/", &prefix, "c", 0}))}, "fjord", false)
	check(t, tb, []req{{"bar.com", "/", ""}})
}

func TestClassSelection(t *testing.T) {
	mk := func(name string, className *string, annotation string) *networkingv1.Ingress {
		i := ing("ns", name, 0, rule(name+".com", p{"/", &prefix, name, 0}))
		i.Spec.IngressClassName = className
		if annotation != "" {
			i.Annotations = map[string]string{LegacyClassAnnotation: annotation}
		}
		return i
	}
	str := func(s string) *string { return &s }
	all := []*networkingv1.Ingress{
		mk("spec-ours", str("fjord"), ""),
		mk("spec-other", str("nginx"), ""),
		mk("ann-ours", nil, "fjord"),
		mk("ann-other", nil, "nginx"),
		mk("spec-wins", str("fjord"), "nginx"),
		mk("spec-wins-other", str("nginx"), "fjord"),
		mk("empty-spec-ann", str(""), "fjord"),
		mk("none", nil, ""),
	}
	for _, isDefault := range []bool{false, true} {
		tb := Build(all, "fjord", isDefault)
		none := ""
		if isDefault {
			none = "none"
		}
		check(t, tb, []req{
			{"spec-ours.com", "/", "spec-ours"},
			{"spec-other.com", "/", ""},
			{"ann-ours.com", "/", "ann-ours"},
			{"ann-other.com", "/", ""},
			{"spec-wins.com", "/", "spec-wins"},
			{"spec-wins-other.com", "/", ""},
			{"empty-spec-ann.com", "/", "empty-spec-ann"},
			{"none.com", "/", none},
		})
	}
}

func TestSkipped(t *testing.T) {
	a := ing("ns", "a", 0,
		rule("*", p{"/", &prefix, "x", 0}),
		rule("a.*.com", p{"/", &prefix, "x", 0}),
		rule("foo.com:80", p{"/", &prefix, "x", 0}),
		rule("ok.com", p{"rel", &prefix, "x", 0}, p{"rel", &exact, "x", 0}, p{"/ok", &prefix, "ok", 0}),
	)
	bad := networkingv1.PathType("Regex")
	a.Spec.Rules = append(a.Spec.Rules, rule("ok.com", p{"/r", &bad, "x", 0}))
	a.Spec.Rules = append(a.Spec.Rules, networkingv1.IngressRule{Host: "nohttp.com"})
	res := rule("ok.com", p{"/res", &prefix, "x", 0})
	res.HTTP.Paths[0].Backend = networkingv1.IngressBackend{Resource: nil}
	a.Spec.Rules = append(a.Spec.Rules, res)
	named := rule("ok.com", p{"/named", &prefix, "named", 0})
	named.HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "http"}
	a.Spec.Rules = append(a.Spec.Rules, named)
	tb := Build([]*networkingv1.Ingress{a}, "fjord", false)
	if len(tb.Skipped) != 7 {
		t.Errorf("skipped %d entries, want 7:\n%s", len(tb.Skipped), strings.Join(tb.Skipped, "\n"))
	}
	check(t, tb, []req{{"ok.com", "/ok", "ok"}, {"ok.com", "/res", ""}, {"ok.com", "/named/x", "named"}})
	b, _ := tb.Match("ok.com", "/named")
	if b.Port != (Port{Name: "http"}) || b.Port.String() != "http" {
		t.Errorf("named port = %+v", b.Port)
	}
}

func TestTLSHosts(t *testing.T) {
	a := ing("ns1", "a", 0)
	a.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"foo.com", "*.foo.com"}, SecretName: "foo-tls"},
		{Hosts: []string{"bar.foo.com"}, SecretName: "bar-tls"},
		{Hosts: []string{"nosecret.com"}},
		{SecretName: "nohosts"},
	}
	b := ing("ns2", "b", 1)
	b.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"foo.com"}, SecretName: "other"}, // conflict
		{Hosts: []string{"baz.org"}, SecretName: "baz"},
	}
	tb := Build([]*networkingv1.Ingress{b, a}, "fjord", false)
	cases := []struct{ host, ns, name string }{
		{"foo.com", "ns1", "foo-tls"},
		{"FOO.COM:443", "ns1", "foo-tls"},
		{"x.foo.com", "ns1", "foo-tls"},
		{"bar.foo.com", "ns1", "bar-tls"},
		{"a.b.foo.com", "", ""},
		{"baz.org", "ns2", "baz"},
		{"nosecret.com", "", ""},
		{"none.net", "", ""},
	}
	for _, c := range cases {
		ns, name, ok := tb.TLSHosts(c.host)
		if ns != c.ns || name != c.name || ok != (c.name != "") {
			t.Errorf("TLSHosts(%q) = %q %q %v, want %q %q", c.host, ns, name, ok, c.ns, c.name)
		}
	}
	if len(tb.Conflicts) != 1 || !strings.Contains(tb.Conflicts[0], `ns2/b: tls host "foo.com" secret "other" ignored`) {
		t.Errorf("conflicts = %v", tb.Conflicts)
	}
	if len(tb.Skipped) != 2 {
		t.Errorf("skipped = %v", tb.Skipped)
	}
}

func TestZeroTable(t *testing.T) {
	var tb Table
	if _, ok := tb.Match("foo.com", "/"); ok {
		t.Error("zero Table matched")
	}
	if _, _, ok := tb.TLSHosts("foo.com"); ok {
		t.Error("zero Table has TLS")
	}
	if _, ok := Build(nil, "fjord", true).Match("x", "/"); ok {
		t.Error("empty Table matched")
	}
}

func TestBuildDoesNotDependOnInputOrder(t *testing.T) {
	in := manyIngresses(50)
	rev := make([]*networkingv1.Ingress, len(in))
	for i := range in {
		rev[len(in)-1-i] = in[i]
	}
	a, b := Build(in, "fjord", false), Build(rev, "fjord", false)
	for i := 0; i < 60; i++ {
		for _, path := range []string{"/", "/api", "/api/v1", "/static/x", "/shared"} {
			host := fmt.Sprintf("h%d.example.com", i)
			x, okx := a.Match(host, path)
			y, oky := b.Match(host, path)
			if x != y || okx != oky {
				t.Errorf("%s%s: %v vs %v", host, path, x, y)
			}
		}
	}
}

// manyIngresses returns n Ingresses, each with its own host plus a
// wildcard, a few paths, and one shared conflicting host.
func manyIngresses(n int) []*networkingv1.Ingress {
	out := make([]*networkingv1.Ingress, 0, n)
	for i := 0; i < n; i++ {
		svc := fmt.Sprintf("svc%d", i)
		out = append(out, ing(fmt.Sprintf("ns%d", i%7), fmt.Sprintf("ing%d", i), i%13,
			rule(fmt.Sprintf("h%d.example.com", i),
				p{"/", &prefix, svc, 0}, p{"/api", &prefix, svc + "-api", 0},
				p{"/api/v1", &exact, svc + "-v1", 0}, p{"/static", &implSpec, svc + "-static", 0}),
			rule(fmt.Sprintf("*.w%d.example.com", i), p{"/", &prefix, svc + "-wild", 0}),
			rule("shared.example.com", p{"/shared", &prefix, svc, 0}),
		))
	}
	return out
}

func BenchmarkMatch(b *testing.B) {
	tb := Build(manyIngresses(1000), "fjord", false)
	reqs := []struct{ host, path string }{
		{"h500.example.com", "/api/v1"},
		{"h999.example.com:443", "/static/css/site.css"},
		{"x.w42.example.com", "/deep/path/with/many/elements"},
		{"shared.example.com", "/shared/x"},
		{"unknown.example.com", "/"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := reqs[i%len(reqs)]
		tb.Match(r.host, r.path)
	}
}
