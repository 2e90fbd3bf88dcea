// Package labimages defines the container images the lab's real-kubelet
// nodes need, as ociimage specs built from this machine and the Go module
// proxy, never pulled from a registry: the pod sandbox (pause), the images the
// upstream e2e network tests run (busybox, agnhost with every tool the tests
// call, regression-issue-74839, distroless-iptables), CoreDNS, and fjord's own
// image with everything the fjord binary executes at run time.
//
// The spec functions are pure: paths in, ociimage.Spec out. Build gathers the
// paths (building Kubernetes test binaries, CoreDNS and pause through
// kubebuild) and writes every tarball into a cache directory.
package labimages

import (
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/fjord-net/fjord/internal/ociimage"
)

// The image references, as Kubernetes v1.37's kubelet and e2e suite name
// them (test/utils/image/manifest.go).
const (
	PauseTag              = "registry.k8s.io/pause:3.10.2"
	BusyboxTag            = "registry.k8s.io/e2e-test-images/busybox:1.37.0-2"
	AgnhostTag            = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
	GlibcDNSTestingTag    = "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1"
	RegressionTag         = "registry.k8s.io/e2e-test-images/regression-issue-74839:1.5"
	DistrolessIptablesTag = "registry.k8s.io/build-image/distroless-iptables:v0.9.9"
	CoreDNSTag            = "registry.k8s.io/coredns/coredns:v1.15.0"
	// FjordRepo is fjord's image repository; the tag is the fjord version.
	FjordRepo = "fjord.dev/fjord"
)

// Host names the programs the images copy from this machine (Debian 12
// paths, from the packages scripts/install-deps.sh installs).
type Host struct {
	// Busybox must be a static busybox (busybox-static); BusyboxApplets is
	// its `busybox --list-full` (see Applets).
	Busybox                                        string
	BusyboxApplets                                 []string
	Dash, Bash, Curl, Wget, NC, IP, Socat, Iperf   string
	Dig, Nslookup, HostCmd, Getent, Conntrack, Nft string
}

// DefaultHost is Debian 12's layout; BusyboxApplets is left for Applets.
func DefaultHost() Host {
	return Host{
		Busybox: "/bin/busybox",
		Dash:    "/usr/bin/dash", Bash: "/usr/bin/bash", Curl: "/usr/bin/curl", Wget: "/usr/bin/wget",
		NC: "/usr/bin/nc.openbsd", IP: "/usr/sbin/ip", Socat: "/usr/bin/socat", Iperf: "/usr/bin/iperf",
		Dig: "/usr/bin/dig", Nslookup: "/usr/bin/nslookup", HostCmd: "/usr/bin/host", Getent: "/usr/bin/getent",
		Conntrack: "/usr/sbin/conntrack", Nft: "/usr/sbin/nft",
	}
}

// base is what every image with a shell has: /tmp, users, name service
// configuration and an /etc/hosts (the kubelet mounts its own over it).
func base(tags ...string) ociimage.Spec {
	return ociimage.Spec{
		Tags: tags,
		Dirs: []ociimage.Dir{{Path: "/tmp", Mode: 0o1777}, {Path: "/root", Mode: 0o700}},
		Files: []ociimage.File{
			{Content: []byte("hosts: files dns\npasswd: files\ngroup: files\n"), Dst: "/etc/nsswitch.conf"},
			{Content: []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), Dst: "/etc/hosts"},
		},
		Passwd: []string{"root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"},
		Group:  []string{"root:x:0:", "nogroup:x:65534:"},
	}
}

// withBusybox adds busybox and a symlink per applet, except applets whose
// name another program in the image already provides (GNU wget, not
// busybox's, which segfaults in Debian's static build; dash as sh: Debian's
// busybox-static is built with the standalone shell, whose sh would run
// busybox's nc and wget before anything on PATH).
func withBusybox(s ociimage.Spec, h Host) ociimage.Spec {
	s.Files = append(s.Files, ociimage.File{Src: h.Busybox, Dst: "/bin/busybox", Mode: 0o755})
	provided := map[string]bool{}
	for _, e := range s.Executables {
		provided[path.Base(e.Dst)] = true
	}
	for _, l := range s.Symlinks {
		provided[path.Base(l.Path)] = true
	}
	for _, f := range s.Files {
		provided[path.Base(f.Dst)] = true
	}
	for _, a := range appletLinks(h.BusyboxApplets, provided) {
		s.Symlinks = append(s.Symlinks, ociimage.Symlink{Path: a, Target: "/bin/busybox"})
	}
	return s
}

// appletLinks turns `busybox --list-full` lines (bin/ls, usr/bin/wget, ...)
// into absolute paths, sorted, leaving out busybox itself, linuxrc (an init
// applet) and applets named in provided.
func appletLinks(list []string, provided map[string]bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range list {
		l = strings.TrimSpace(l)
		name := path.Base(l)
		if l == "" || !strings.Contains(l, "/") || name == "busybox" || provided[name] {
			continue
		}
		p := path.Clean("/" + l)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Pause is the pod sandbox image: the static pause program alone.
func Pause(pause string) ociimage.Spec {
	return ociimage.Spec{
		Tags:       []string{PauseTag},
		Files:      []ociimage.File{{Src: pause, Dst: "/pause", Mode: 0o755}},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
	}
}

// Busybox is the e2e busybox image.
func Busybox(h Host) ociimage.Spec {
	s := base(BusyboxTag)
	s.Cmd = []string{"sh"}
	return withBusybox(s, h)
}

// AgnhostInputs are the built files the agnhost image carries.
type AgnhostInputs struct {
	// Agnhost is the agnhost binary (kubebuild target agnhost).
	Agnhost string
	// CoreDNS is copied to /coredns: the DNS tests run it from this image.
	CoreDNS string
	// KubeSource is the k8s.io/kubernetes module directory, for the porter's
	// test certificate and key.
	KubeSource string
}

// Agnhost is the e2e tests' main image, also tagged glibc-dns-testing (the
// DNS tests' glibc resolver image): agnhost (with its agnhost-2 link), and
// every tool the network tests run in it — dash as /bin/sh, OpenBSD nc,
// curl, GNU wget, iproute2's ip, socat, bash, iperf, dig, nslookup, host,
// getent — plus busybox for the rest, coredns at /coredns, the porter's
// certificate, /uploads, and the user and group the tests look up.
func Agnhost(h Host, in AgnhostInputs) ociimage.Spec {
	s := base(AgnhostTag, GlibcDNSTestingTag)
	porter := filepath.Join(in.KubeSource, "test", "images", "agnhost", "porter")
	s.Files = append(s.Files,
		ociimage.File{Src: in.Agnhost, Dst: "/agnhost", Mode: 0o755},
		ociimage.File{Src: in.CoreDNS, Dst: "/coredns", Mode: 0o755},
		ociimage.File{Src: filepath.Join(porter, "localhost.crt"), Dst: "/localhost.crt", Mode: 0o644},
		ociimage.File{Src: filepath.Join(porter, "localhost.key"), Dst: "/localhost.key", Mode: 0o644},
	)
	s.Symlinks = append(s.Symlinks, ociimage.Symlink{Path: "/agnhost-2", Target: "agnhost"}, ociimage.Symlink{Path: "/bin/bash", Target: "/usr/bin/bash"})
	s.Dirs = append(s.Dirs, ociimage.Dir{Path: "/uploads", Mode: 0o777})
	s.Executables = []ociimage.Executable{
		{Src: h.Dash, Dst: "/bin/sh"}, {Src: h.Bash, Dst: "/usr/bin/bash"}, {Src: h.NC, Dst: "/usr/bin/nc"},
		{Src: h.Curl, Dst: "/usr/bin/curl"}, {Src: h.Wget, Dst: "/usr/bin/wget"}, {Src: h.IP, Dst: "/sbin/ip"},
		{Src: h.Socat, Dst: "/usr/bin/socat"}, {Src: h.Iperf, Dst: "/usr/bin/iperf"}, {Src: h.Dig, Dst: "/usr/bin/dig"},
		{Src: h.Nslookup, Dst: "/usr/bin/nslookup"}, {Src: h.HostCmd, Dst: "/usr/bin/host"}, {Src: h.Getent, Dst: "/usr/bin/getent"},
	}
	s.Passwd = append(s.Passwd, "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh")
	s.Group = append(s.Group, "user-defined-in-image:x:1000:", "group-defined-in-image:x:50000:user-defined-in-image")
	s.Entrypoint = []string{"/agnhost"}
	s.Cmd = []string{"pause"}
	return withBusybox(s, h)
}

// RegressionIssue74839 is the conntrack regression test's server image.
func RegressionIssue74839(bin string) ociimage.Spec {
	return ociimage.Spec{
		Tags:       []string{RegressionTag},
		Files:      []ociimage.File{{Src: bin, Dst: "/regression-issue-74839", Mode: 0o755}},
		Entrypoint: []string{"/regression-issue-74839"},
	}
}

// DistrolessIptables stands in for the build image the kube-proxy e2e test
// (CLOSE_WAIT timeout) runs on the host network: a shell, busybox and
// conntrack, which is all that test uses of it (not iptables itself).
func DistrolessIptables(h Host) ociimage.Spec {
	s := base(DistrolessIptablesTag)
	s.Executables = []ociimage.Executable{{Src: h.Dash, Dst: "/bin/sh"}, {Src: h.Conntrack, Dst: "/usr/sbin/conntrack"}}
	return withBusybox(s, h)
}

// CoreDNS is the cluster DNS image.
func CoreDNS(coredns string) ociimage.Spec {
	return ociimage.Spec{
		Tags:       []string{CoreDNSTag},
		Files:      []ociimage.File{{Src: coredns, Dst: "/coredns", Mode: 0o755}},
		Entrypoint: []string{"/coredns"},
	}
}

// FjordInputs are the files of fjord's image.
type FjordInputs struct {
	// Version is the image tag (git describe of the build, or "dev").
	Version string
	// Fjord and FjordCNI are the binaries, best built with CGO_ENABLED=0: the
	// agent copies the CNI plugin onto nodes whose C library is unknown.
	Fjord, FjordCNI string
	// CNIPluginDir holds the reference plugins the agent installs next to
	// fjord's: portmap (chained for hostPort), loopback (containerd sets up
	// every pod's lo with it) and host-local (static, CGO_ENABLED=0 builds
	// from github.com/containernetworking/plugins v1.10.0, installed by
	// scripts/install-deps.sh).
	CNIPluginDir string
	// Nft is the nft command, copied with its libraries: the service proxy
	// programs nftables through it (sigs.k8s.io/knftables runs `nft`).
	Nft string
}

// FjordTag is fjord's image reference for a version.
func FjordTag(version string) string { return FjordRepo + ":" + version }

// Fjord is fjord's own image: the binary at /usr/local/bin/fjord (the
// entrypoint) with the slim CNI plugin beside it (fjord-cni, which the agent
// installs onto the node as /opt/cni/bin/fjord), the reference plugins in
// /usr/lib/fjord/cni (installed where the node lacks them; not /opt/cni/bin,
// which the agent's pod mounts from the host), and nft, the one program fjord
// execs (knftables).
func Fjord(in FjordInputs) ociimage.Spec {
	s := ociimage.Spec{
		// Also tagged :dev, the tag deploy/fjord.yaml runs: whatever was built
		// last is what `kubectl apply -f deploy/fjord.yaml` starts.
		Tags: slices.Compact([]string{FjordTag(in.Version), FjordTag("dev")}),
		Dirs: []ociimage.Dir{{Path: "/tmp", Mode: 0o1777}, {Path: "/var/lib/fjord", Mode: 0o700}},
		Files: []ociimage.File{
			{Src: in.Fjord, Dst: "/usr/local/bin/fjord", Mode: 0o755},
			{Src: in.FjordCNI, Dst: "/usr/local/bin/fjord-cni", Mode: 0o755},
		},
		Executables: []ociimage.Executable{{Src: in.Nft, Dst: "/usr/sbin/nft"}},
		Entrypoint:  []string{"/usr/local/bin/fjord"},
	}
	for _, p := range CNIPlugins() {
		s.Files = append(s.Files, ociimage.File{Src: filepath.Join(in.CNIPluginDir, p), Dst: "/usr/lib/fjord/cni/" + p, Mode: 0o755})
	}
	return s
}

// CNIPlugins are the reference plugins fjord's image carries.
func CNIPlugins() []string { return []string{"host-local", "loopback", "portmap"} }
