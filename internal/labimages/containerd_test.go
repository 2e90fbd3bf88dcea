package labimages

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/testutil/containerdtest"
)

// TestImagesRunInContainerd builds every lab image and fjord's (from the
// shared Kubernetes cache: minutes the first time, see
// docs/kubernetes-build.md), imports them into a throwaway containerd and runs
// what the e2e tests and the lab run in each.
func TestImagesRunInContainerd(t *testing.T) {
	containerdtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	kube := kubebuild.Config{Logf: t.Logf}
	built, err := Build(ctx, Config{Dir: t.TempDir(), Kube: kube})
	if err != nil {
		t.Fatal(err)
	}
	fjordImage := filepath.Join(t.TempDir(), "fjord.tar")
	if _, err := WriteFjord(fjordImage, fjordInputs(t, ctx)); err != nil {
		t.Fatal(err)
	}

	in := containerdtest.Start(t, false)
	for _, b := range built {
		start := time.Now()
		if _, err := in.Import(b.File); err != nil {
			t.Fatal(err)
		}
		t.Logf("imported %s (%d MB) in %s", b.Image.Tags[0], b.Image.Size>>20, time.Since(start).Round(time.Millisecond))
	}
	if _, err := in.Import(fjordImage); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		image string
		args  []string
		want  []string // substrings of the output
	}{
		{PauseTag, []string{"/pause", "-v"}, []string{"pause (fjord)"}},
		{BusyboxTag, []string{"sh", "-c", "echo $((6*7)); ls /bin/ls"}, []string{"42", "/bin/ls"}},
		{AgnhostTag, []string{"/agnhost", "netexec", "--help"}, []string{"--http-port"}},
		{AgnhostTag, []string{"/agnhost-2", "--help"}, []string{"netexec"}},
		{AgnhostTag, []string{"sh", "-c", "nc -h 2>&1 | head -1; wget --version | head -1; dig -v 2>&1; getent hosts localhost"},
			[]string{"OpenBSD netcat", "GNU Wget", "DiG 9.", "localhost"}},
		{GlibcDNSTestingTag, []string{"sh", "-c", "curl --version | head -1; ip -V; socat -V | head -2; bash -c 'echo bash $BASH_VERSION'; iperf -v 2>&1; host -V; nslookup -version"},
			[]string{"curl 7.", "iproute2", "socat version", "bash 5.", "iperf version 2.", "host 9.", "nslookup 9."}},
		{AgnhostTag, []string{"sh", "-c", "id user-defined-in-image; getent group group-defined-in-image; ls -d /uploads; /coredns -version; test -s /localhost.crt && test -s /localhost.key && echo porter-files"},
			[]string{"uid=1000(user-defined-in-image)", "group-defined-in-image:x:50000:", "/uploads", "CoreDNS-1.15.0", "porter-files"}},
		{CoreDNSTag, []string{"/coredns", "-version"}, []string{"CoreDNS-1.15.0"}},
		{DistrolessIptablesTag, []string{"sh", "-c", "which conntrack && conntrack --version && cat /etc/hosts | grep -c localhost"}, []string{"/usr/sbin/conntrack", "conntrack v1."}},
		{"fjord.dev/fjord:test", []string{"/usr/local/bin/fjord", "version"}, []string{"fjord "}},
		{"fjord.dev/fjord:test", []string{"/usr/sbin/nft", "--version"}, []string{"nftables v1."}},
		{"fjord.dev/fjord:test", []string{"/usr/lib/fjord/cni/loopback"}, []string{"CNI loopback plugin v1.10.0"}},
		{"fjord.dev/fjord:test", []string{"/usr/lib/fjord/cni/portmap"}, []string{"CNI portmap plugin v1.10.0"}},
		{"fjord.dev/fjord:test", []string{"/usr/lib/fjord/cni/host-local"}, []string{"CNI host-local plugin v1.10.0"}},
	} {
		out, err := in.Run(tc.image, tc.args...)
		if err != nil && !strings.Contains(tc.args[0], "/usr/lib/fjord/cni/") { // plugins exit 1 without CNI_COMMAND
			t.Errorf("%s %q: %v", tc.image, tc.args, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s %q: output lacks %q:\n%s", tc.image, tc.args, w, out)
			}
		}
	}
	// The conntrack regression server starts and asks for its pod IP.
	out, err := in.Run(RegressionTag)
	if err == nil || !strings.Contains(out, "No valid IP found") {
		t.Errorf("%s without POD_IP: %v, want its panic asking for an IP:\n%s", RegressionTag, err, out)
	}
}

// fjordInputs builds fjord and fjord-cni static, as `make image` does.
func fjordInputs(t *testing.T, ctx context.Context) FjordInputs {
	t.Helper()
	dir := t.TempDir()
	for _, cmd := range []string{"fjord", "fjord-cni"} {
		build := exec.CommandContext(ctx, "go", "build", "-ldflags", "-s -w", "-o", filepath.Join(dir, cmd), "github.com/fjord-net/fjord/cmd/"+cmd)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	return FjordInputs{Version: "test", Fjord: filepath.Join(dir, "fjord"), FjordCNI: filepath.Join(dir, "fjord-cni"),
		CNIPluginDir: "/usr/local/lib/fjord/cni", Nft: "/usr/sbin/nft"}
}
