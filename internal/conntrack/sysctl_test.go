package conntrack

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
)

func TestConntrackSysctlsFromTheSeedsConfig(t *testing.T) {
	cfg, err := proxyconfig.Parse([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range cfg.ConntrackSysctls(2) {
		got = append(got, s.Path[len("net/netfilter/"):]+"="+strconv.Itoa(s.Value))
	}
	want := "nf_conntrack_max=131072 nf_conntrack_tcp_timeout_established=86400 nf_conntrack_tcp_timeout_close_wait=3600"
	if strings.Join(got, " ") != want {
		t.Fatalf("kube-proxy's defaults: got %v, want %s", got, want)
	}
	zero, _ := proxyconfig.Parse([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nconntrack:\n  maxPerCore: 0\n  tcpCloseWaitTimeout: 0s\n  tcpEstablishedTimeout: 0s\n"))
	if s := zero.ConntrackSysctls(2); len(s) != 0 {
		t.Fatalf("explicit zeros leave the kernel alone: %v", s)
	}
}

func TestApplySysctls(t *testing.T) {
	dir := t.TempDir()
	nf := filepath.Join(dir, "net", "netfilter")
	os.MkdirAll(nf, 0o755)
	os.WriteFile(filepath.Join(nf, "nf_conntrack_max"), []byte("262144\n"), 0o644)
	os.WriteFile(filepath.Join(nf, "nf_conntrack_tcp_timeout_close_wait"), []byte("60\n"), 0o644)
	os.WriteFile(filepath.Join(nf, "nf_conntrack_tcp_timeout_established"), []byte("86400\n"), 0o644)
	changed, err := ApplySysctls(dir, []proxyconfig.Sysctl{
		{Path: "net/netfilter/nf_conntrack_max", Value: 131072, RaiseOnly: true},
		{Path: "net/netfilter/nf_conntrack_tcp_timeout_established", Value: 86400},
		{Path: "net/netfilter/nf_conntrack_tcp_timeout_close_wait", Value: 3600},
	})
	if err != nil || len(changed) != 1 || changed[0] != "net/netfilter/nf_conntrack_tcp_timeout_close_wait=3600" {
		t.Fatalf("changed %v, %v: only close_wait differs (max is never lowered)", changed, err)
	}
	if b, _ := os.ReadFile(filepath.Join(nf, "nf_conntrack_tcp_timeout_close_wait")); string(b) != "3600" {
		t.Fatalf("close_wait = %q", b)
	}
	if _, err := ApplySysctls(dir, []proxyconfig.Sysctl{{Path: "net/netfilter/missing", Value: 1}}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing file must be named: %v", err)
	}
}
