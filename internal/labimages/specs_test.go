package labimages

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/ociimage"
)

func TestAppletLinks(t *testing.T) {
	list := []string{"linuxrc", "bin/busybox", "bin/sh", "bin/ls", "usr/bin/wget", "sbin/ip", "usr/bin/timeout", "bin/ls", ""}
	got := appletLinks(list, map[string]bool{"sh": true, "wget": true, "ip": true})
	want := []string{"/bin/ls", "/usr/bin/timeout"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("appletLinks = %v, want %v", got, want)
	}
}

// planHost is an ociimage.Host where every file exists, executables need no
// libraries, and modes are 0755.
type planHost struct{}

func (planHost) Mode(string) (fs.FileMode, error)             { return 0o755, nil }
func (planHost) Libraries(string) ([]ociimage.Library, error) { return nil, nil }

func testHost() Host {
	h := DefaultHost()
	h.BusyboxApplets = []string{"bin/sh", "bin/ash", "bin/ls", "bin/cat", "bin/sleep", "bin/false", "bin/hostname",
		"usr/bin/nc", "usr/bin/wget", "sbin/ip", "usr/bin/nslookup", "usr/bin/test", "usr/bin/timeout", "linuxrc"}
	return h
}

// planned plans a spec and indexes its entries by path.
func planned(t *testing.T, s ociimage.Spec) map[string]ociimage.Entry {
	t.Helper()
	entries, err := ociimage.Plan(s, planHost{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]ociimage.Entry{}
	for _, e := range entries {
		m[e.Path] = e
	}
	return m
}

func TestAgnhost(t *testing.T) {
	s := Agnhost(testHost(), AgnhostInputs{Agnhost: "/cache/bin/agnhost", CoreDNS: "/cache/coredns", KubeSource: "/mod/k8s.io/kubernetes@v1.37.2"})
	if !reflect.DeepEqual(s.Tags, []string{AgnhostTag, GlibcDNSTestingTag}) {
		t.Errorf("tags = %v", s.Tags)
	}
	m := planned(t, s)
	file := func(p, src string) {
		t.Helper()
		if e, ok := m[p]; !ok || e.Kind != ociimage.KindFile || e.Src != src {
			t.Errorf("%s: %+v, want a file copied from %s", p, e, src)
		}
	}
	link := func(p, target string) {
		t.Helper()
		if e, ok := m[p]; !ok || e.Kind != ociimage.KindSymlink || e.Target != target {
			t.Errorf("%s: %+v, want a link to %s", p, e, target)
		}
	}
	file("/agnhost", "/cache/bin/agnhost")
	link("/agnhost-2", "agnhost")
	file("/coredns", "/cache/coredns")
	file("/localhost.crt", "/mod/k8s.io/kubernetes@v1.37.2/test/images/agnhost/porter/localhost.crt")
	file("/localhost.key", "/mod/k8s.io/kubernetes@v1.37.2/test/images/agnhost/porter/localhost.key")
	// The tools the e2e tests run are the real ones, not busybox applets.
	file("/bin/sh", "/usr/bin/dash")
	file("/usr/bin/nc", "/usr/bin/nc.openbsd")
	file("/usr/bin/wget", "/usr/bin/wget")
	file("/sbin/ip", "/usr/sbin/ip")
	file("/usr/bin/nslookup", "/usr/bin/nslookup")
	for _, p := range []string{"/usr/bin/curl", "/usr/bin/socat", "/usr/bin/iperf", "/usr/bin/dig", "/usr/bin/host", "/usr/bin/getent", "/usr/bin/bash"} {
		file(p, p)
	}
	link("/bin/bash", "/usr/bin/bash")
	// busybox for the rest
	file("/bin/busybox", "/bin/busybox")
	for _, p := range []string{"/bin/ls", "/bin/cat", "/bin/sleep", "/bin/false", "/usr/bin/test", "/usr/bin/timeout", "/bin/hostname", "/bin/ash"} {
		link(p, "/bin/busybox")
	}
	if _, ok := m["/linuxrc"]; ok {
		t.Error("linuxrc applet linked")
	}
	if e := m["/uploads"]; e.Kind != ociimage.KindDir {
		t.Errorf("/uploads: %+v", e)
	}
	if e := m["/tmp"]; e.Mode != 0o777|fs.ModeSticky {
		t.Errorf("/tmp mode %v", e.Mode)
	}
	passwd, group := string(m["/etc/passwd"].Content), string(m["/etc/group"].Content)
	if !strings.Contains(passwd, "\nuser-defined-in-image:x:1000:1000:") || !strings.Contains(group, "\ngroup-defined-in-image:x:50000:") {
		t.Errorf("passwd:\n%s\ngroup:\n%s", passwd, group)
	}
	if !reflect.DeepEqual(s.Entrypoint, []string{"/agnhost"}) || !reflect.DeepEqual(s.Cmd, []string{"pause"}) {
		t.Errorf("entrypoint %v cmd %v", s.Entrypoint, s.Cmd)
	}
}

func TestFjord(t *testing.T) {
	s := Fjord(FjordInputs{Version: "v0.3.0-12-gabc", Fjord: "/b/fjord", FjordCNI: "/b/fjord-cni", CNIPluginDir: "/cni", Nft: "/usr/sbin/nft"})
	if !reflect.DeepEqual(s.Tags, []string{"fjord.dev/fjord:v0.3.0-12-gabc", "fjord.dev/fjord:dev"}) {
		t.Errorf("tags = %v", s.Tags)
	}
	m := planned(t, s)
	for p, src := range map[string]string{
		"/usr/local/bin/fjord": "/b/fjord", "/usr/local/bin/fjord-cni": "/b/fjord-cni", "/usr/sbin/nft": "/usr/sbin/nft",
		"/usr/lib/fjord/cni/portmap": "/cni/portmap", "/usr/lib/fjord/cni/loopback": "/cni/loopback", "/usr/lib/fjord/cni/host-local": "/cni/host-local",
	} {
		if e := m[p]; e.Src != src || e.Mode != 0o755 {
			t.Errorf("%s: %+v, want %s mode 0755", p, e, src)
		}
	}
}

func TestEverySpecPlans(t *testing.T) {
	h := testHost()
	for _, s := range []ociimage.Spec{
		Pause("/p"), Busybox(h), Agnhost(h, AgnhostInputs{Agnhost: "/a", CoreDNS: "/c", KubeSource: "/k"}),
		RegressionIssue74839("/r"), DistrolessIptables(h), CoreDNS("/c"),
		Fjord(FjordInputs{Version: "dev", Fjord: "/f", FjordCNI: "/fc", CNIPluginDir: "/cni", Nft: "/nft"}),
	} {
		if _, err := ociimage.Plan(s, planHost{}); err != nil {
			t.Errorf("%s: %v", s.Name(), err)
		}
	}
	if _, err := ociimage.Plan(Fjord(FjordInputs{Version: "not a tag!", Fjord: "/f", FjordCNI: "/fc", CNIPluginDir: "/cni", Nft: "/nft"}), planHost{}); err == nil {
		t.Error("fjord image with an invalid version: want an error")
	}
}
