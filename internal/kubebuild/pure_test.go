package kubebuild

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRelease(t *testing.T) {
	for _, tc := range []struct {
		in, staging, err string
	}{
		{in: "v1.37.2", staging: "v0.37.2"},
		{in: "v1.40.0", staging: "v0.40.0"},
		{in: "1.37.2", err: "not of the form"},
		{in: "v1.37", err: "not of the form"},
		{in: "v2.0.0", err: "not of the form"},
		{in: "v1.37.2-rc.1", err: "not of the form"},
		{in: "v1.037.2", err: "not of the form"},
		{in: "", err: "not of the form"},
	} {
		r, err := parseRelease(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "\""+tc.in+"\"") {
				t.Errorf("parseRelease(%q) = %v, want error naming it and containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.staging() != tc.staging || r.String() != tc.in {
			t.Errorf("parseRelease(%q) = %v (staging %s), %v; want staging %s", tc.in, r, r.staging(), err, tc.staging)
		}
	}
}

func TestLdflags(t *testing.T) {
	r, _ := parseRelease("v1.37.2")
	want := "-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
	if got := r.ldflags(); got != want {
		t.Errorf("ldflags:\n got %s\nwant %s", got, want)
	}
}

// A trimmed k8s.io/kubernetes go.mod in both of the shapes go.mod allows.
const kubeGoModSample = `module k8s.io/kubernetes

go 1.26.0

require (
	github.com/onsi/ginkgo/v2 v2.32.0
	k8s.io/api v0.0.0
	k8s.io/client-go v0.0.0
	k8s.io/utils v0.0.0-20260626114624-be93311217bd
)

require k8s.io/kubelet v0.0.0

require (
	k8s.io/cri-api v0.0.0 // indirect
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	k8s.io/cri-api => ./staging/src/k8s.io/cri-api
	k8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
	k8s.io/utils => ./staging/src/k8s.io/utils
)

replace k8s.io/kubelet => ./staging/src/k8s.io/kubelet
`

func TestStagingModules(t *testing.T) {
	got := stagingModules([]byte(kubeGoModSample))
	// sample-controller is replaced but not required; utils is required at a
	// pseudo-version, not v0.0.0.
	want := []string{"k8s.io/api", "k8s.io/client-go", "k8s.io/cri-api", "k8s.io/kubelet"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stagingModules = %v, want %v", got, want)
	}
}

func TestGoMod(t *testing.T) {
	r, _ := parseRelease("v1.37.2")
	got, err := goMod(r, []byte(kubeGoModSample))
	if err != nil {
		t.Fatal(err)
	}
	want := `module fjord.local/kubernetes

go 1.26.0

godebug default=go1.26

require k8s.io/kubernetes v1.37.2

replace k8s.io/api => k8s.io/api v0.37.2
replace k8s.io/client-go => k8s.io/client-go v0.37.2
replace k8s.io/cri-api => k8s.io/cri-api v0.37.2
replace k8s.io/kubelet => k8s.io/kubelet v0.37.2
`
	if got != want {
		t.Errorf("goMod:\n%s\nwant:\n%s", got, want)
	}
	if _, err := goMod(r, []byte("module k8s.io/kubernetes\n")); err == nil || !strings.Contains(err.Error(), "no staging modules") {
		t.Errorf("goMod without staging modules: %v, want an error", err)
	}
}

func TestToolsGo(t *testing.T) {
	src := toolsGo([]string{"k8s.io/b", "k8s.io/a", "k8s.io/b"})
	f, err := parser.ParseFile(token.NewFileSet(), "tools.go", src, parser.ParseComments)
	if err != nil {
		t.Fatalf("tools.go does not parse: %v\n%s", err, src)
	}
	var imports []string
	for _, im := range f.Imports {
		imports = append(imports, im.Path.Value)
	}
	if want := []string{`"k8s.io/a"`, `"k8s.io/b"`}; !reflect.DeepEqual(imports, want) {
		t.Errorf("imports = %v, want %v (sorted, once each)", imports, want)
	}
	if !strings.HasPrefix(src, "//go:build tools\n\n") {
		t.Errorf("tools.go must be excluded from builds by the tools tag:\n%s", src)
	}
}

func TestTestImports(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("e2e.go", "package e2e\n\nimport _ \"k8s.io/not/a/test/import\"\n")
	write("e2e_test.go", "package e2e\n\nimport (\n\t\"testing\"\n\t\"os/exec\"\n\n\t_ \"k8s.io/kubernetes/test/e2e/network\"\n\tginkgo \"github.com/onsi/ginkgo/v2\"\n)\n")
	write("other_test.go", "package e2e_test\n\nimport \"k8s.io/kubernetes/test/e2e/network\"\n")
	got, err := testImports(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"github.com/onsi/ginkgo/v2", "k8s.io/kubernetes/test/e2e/network"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("testImports = %v, want %v", got, want)
	}
	if _, err := testImports(t.TempDir()); err == nil {
		t.Error("testImports of a directory without tests: want an error")
	}
}

func TestIsPackageLine(t *testing.T) {
	for line, want := range map[string]bool{
		"k8s.io/kubernetes/pkg/kubelet":      true,
		"github.com/onsi/ginkgo/v2/ginkgo":   true,
		"internal/goarch":                    true,
		"gopkg.in/evanphx/json-patch.v4":     true,
		"go: downloading k8s.io/api v0.37.2": false,
		"# k8s.io/kubernetes/pkg/foo":        false,
		"pkg/foo/bar.go:12:3: undefined: x":  false,
		"":                                   false,
		"note: module requires Go 1.27":      false,
		"\tfoo.go:1":                         false,
		"k8s.io/kubernetes/cmd/kubelet: cannot find main module":         false,
		"go: k8s.io/kubernetes@v1.37.2: missing go.sum entry for go.mod": false,
	} {
		if got := isPackageLine(line); got != want {
			t.Errorf("isPackageLine(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestGoOutputCountsPackagesAndKeepsTail(t *testing.T) {
	var o goOutput
	o.line("go: downloading k8s.io/api v0.37.2")
	for i := 0; i < 1234; i++ {
		o.line("k8s.io/kubernetes/pkg/p")
	}
	for i := 0; i < tailLines+5; i++ {
		o.line("x.go:1:1: error " + string(rune('a'+i%26)))
	}
	if o.packages != 1234 {
		t.Errorf("packages = %d, want 1234", o.packages)
	}
	if len(o.tail) != tailLines || strings.Contains(o.tailText(), "downloading") {
		t.Errorf("tail keeps %d lines (want %d, only the last): %q", len(o.tail), tailLines, o.tailText())
	}
}

func TestHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		what     string
		packages int
		elapsed  time.Duration
		want     string
	}{
		{"building kubelet, kubectl", 1234, 6*time.Minute + 30*time.Second, "still building kubelet, kubectl: 1,234 packages compiled, 6m30s"},
		{"building ginkgo", 0, 15 * time.Second, "still building ginkgo: 0 packages compiled, 15s"},
		{"building ginkgo", 1, 15 * time.Second, "still building ginkgo: 1 package compiled, 15s"},
		{"tidying the scratch module", -1, 95*time.Second + 400*time.Millisecond, "still tidying the scratch module: 1m35s"},
		{"building x", 1234567, time.Hour + 2*time.Second, "still building x: 1,234,567 packages compiled, 1h0m2s"},
	} {
		if got := heartbeat(tc.what, tc.packages, tc.elapsed); got != tc.want {
			t.Errorf("heartbeat = %q, want %q", got, tc.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 123456: "123,456", -4321: "-4,321"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\n", 100); got != "a\nb" {
		t.Errorf("tail short = %q", got)
	}
	if got := tail("first line\nsecond line\nthird", 12); got != "third" {
		t.Errorf("tail cut = %q, want it to start at a line", got)
	}
}

func TestParseVersionOutput(t *testing.T) {
	for _, tc := range []struct {
		t       Target
		out     string
		want    string
		wantErr bool
	}{
		{KubeAPIServer, "Kubernetes v1.37.2\n", "v1.37.2", false},
		{Kubelet, "Kubernetes v1.36.0", "v1.36.0", false},
		{KubeProxy, "I1202 log line\nKubernetes v1.37.2", "", true},
		{KubeScheduler, "something else", "", true},
		{Kubectl, `{"clientVersion":{"major":"1","gitVersion":"v1.37.2"},"kustomizeVersion":"v5.8.1"}`, "v1.37.2", false},
		{Kubectl, "Client Version: v1.37.2", "", true},
		{Kubectl, `{"clientVersion":{}}`, "", true},
	} {
		got, err := parseVersionOutput(tc.t, []byte(tc.out))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseVersionOutput(%s, %q) = %q, %v; want %q (error %v)", tc.t, tc.out, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestStamp(t *testing.T) {
	key := inputKey("v1.37.2", "k8s.io/kubernetes/test/images/agnhost")
	if key == inputKey("v1.37.2k8s.io/kubernetes/test/images/agnhost") || key == inputKey("v1.37.3", "k8s.io/kubernetes/test/images/agnhost") {
		t.Fatal("inputKey must separate its parts and depend on each")
	}
	s := stamp{key: key, size: 64368802, modTime: 1764707730123456789}
	got, err := parseStamp(s.String())
	if err != nil || got != s {
		t.Fatalf("parseStamp(String()) = %v, %v; want %v", got, err, s)
	}
	for _, bad := range []string{"", "abc\n1 2\n", key + "\n1\n", key + "\nx 2\n", key} {
		if _, err := parseStamp(bad); err == nil {
			t.Errorf("parseStamp(%q): want an error", bad)
		}
	}

	dir := t.TempDir()
	bin, sp := filepath.Join(dir, "agnhost"), filepath.Join(dir, ".agnhost.stamp")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if stampCurrent(sp, bin, key) {
		t.Error("no stamp yet, but current")
	}
	if err := writeStamp(sp, bin, key); err != nil {
		t.Fatal(err)
	}
	if !stampCurrent(sp, bin, key) {
		t.Error("stamp just written is not current")
	}
	if stampCurrent(sp, bin, inputKey("other")) {
		t.Error("stamp current for another key")
	}
	if err := os.WriteFile(bin, []byte("replaced by hand"), 0o755); err != nil {
		t.Fatal(err)
	}
	if stampCurrent(sp, bin, key) {
		t.Error("binary replaced, but the stamp still says current")
	}
}

func TestBuildEnv(t *testing.T) {
	got := buildEnv([]string{"HOME=/root", "CGO_ENABLED=1", "GOFLAGS=-race", "GOWORK=/x/go.work", "PATH=/bin"})
	want := []string{"HOME=/root", "PATH=/bin", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false -mod=mod"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("buildEnv = %v, want %v", got, want)
	}
}

func TestTargets(t *testing.T) {
	for _, tg := range AllTargets() {
		info, err := infoOf(tg)
		if err != nil || info.pkg == "" {
			t.Errorf("infoOf(%s) = %v, %v", tg, info, err)
		}
	}
	if _, err := infoOf("kube-dns"); err == nil || !strings.Contains(err.Error(), `"kube-dns"`) {
		t.Errorf("unknown target: %v, want an error naming it", err)
	}
	if i, _ := infoOf(E2ETest); i.kind != kindTest || i.pkg != "k8s.io/kubernetes/test/e2e" {
		t.Errorf("e2e.test = %+v", i)
	}
}

func TestColdEstimate(t *testing.T) {
	for _, tc := range []struct {
		ts       []Target
		min, gib int
	}{
		{[]Target{Ginkgo}, 1, 1},
		{[]Target{Ginkgo, RegressionIssue74839}, 1, 1},
		{[]Target{KubeAPIServer}, 14, 4},
		{[]Target{Kubelet, Kubectl, E2ETest}, 17, 5},
		{[]Target{E2ETest, Agnhost}, 20, 5},
	} {
		m, g := coldEstimate(tc.ts)
		if m != tc.min || g != tc.gib {
			t.Errorf("coldEstimate(%v) = %d min %d GB, want %d, %d", tc.ts, m, g, tc.min, tc.gib)
		}
	}
}

func TestCoreDNSMain(t *testing.T) {
	src := coreDNSMain(coreDNSPlugins())
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, 0)
	if err != nil {
		t.Fatalf("main.go does not parse: %v\n%s", err, src)
	}
	var imports []string
	for _, im := range f.Imports {
		imports = append(imports, strings.Trim(im.Path.Value, `"`))
	}
	want := []string{"github.com/coredns/coredns/core/dnsserver", "github.com/coredns/coredns/coremain"}
	for _, p := range []string{"cache", "errors", "forward", "health", "hosts", "kubernetes", "loadbalance", "log", "loop", "ready", "reload", "template", "whoami"} {
		want = append(want, "github.com/coredns/coredns/plugin/"+p)
	}
	if !reflect.DeepEqual(imports, want) {
		t.Errorf("imports = %v\nwant %v", imports, want)
	}
	r, _ := parseRelease("v1.37.2")
	mod := coreDNSGoMod("v1.15.0", r)
	for _, w := range []string{"github.com/coredns/coredns v1.15.0", "k8s.io/client-go v0.37.2"} {
		if !strings.Contains(mod, w) {
			t.Errorf("go.mod lacks %q:\n%s", w, mod)
		}
	}
}

func TestParseCoreDNSVersion(t *testing.T) {
	for out, want := range map[string]string{
		"CoreDNS-1.15.0\nlinux/amd64, go1.26.8, \n": "v1.15.0",
		"CoreDNS-1.2.3":  "v1.2.3",
		"coredns 1.15.0": "",
		"CoreDNS-1.15":   "",
		"":               "",
	} {
		got, err := parseCoreDNSVersion([]byte(out))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("parseCoreDNSVersion(%q) = %q, %v; want %q", out, got, err, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Setenv(CacheEnv, "/tmp/fjord-kube-cache-test")
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != DefaultVersion || c.CacheDir != "/tmp/fjord-kube-cache-test" || c.Heartbeat != 15*time.Second || c.Nice != 10 || c.Logf == nil || c.Go == "" {
		t.Errorf("defaults: %+v", c)
	}
	dir, err := ModuleDir(Config{Version: "v1.36.1"})
	if err != nil || dir != "/tmp/fjord-kube-cache-test/kubernetes-v1.36.1" {
		t.Errorf("ModuleDir = %q, %v", dir, err)
	}
	if _, err := ModuleDir(Config{Version: "latest"}); err == nil {
		t.Error("ModuleDir of a bad version: want an error")
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
