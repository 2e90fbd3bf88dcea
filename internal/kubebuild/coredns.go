package kubebuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultCoreDNSVersion is the CoreDNS release built when Config.CoreDNSVersion is empty.
const DefaultCoreDNSVersion = "v1.15.0"

// coreDNSPlugins are the plugins compiled into fjord's CoreDNS: what a test
// cluster's Corefile uses (kubeadm's default Corefile and the e2e DNS tests),
// without the cloud-provider plugins whose SDKs dominate upstream's build. As
// upstream does (core/plugin/zplugin.go), a plugin is linked by importing it;
// the order of the chain comes from dnsserver's directive list, not from here.
func coreDNSPlugins() []string {
	return []string{"cache", "errors", "forward", "health", "hosts", "kubernetes", "loadbalance",
		"log", "loop", "ready", "reload", "template", "whoami"}
}

var semverRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// coreDNSMain is the scratch module's main.go.
func coreDNSMain(plugins []string) string {
	var b strings.Builder
	b.WriteString("// Command coredns is CoreDNS with only the plugins a test cluster needs (written by\n")
	b.WriteString("// fjord's internal/kubebuild; edits are overwritten).\n")
	b.WriteString("package main\n\nimport (\n")
	b.WriteString("\t\"github.com/coredns/coredns/core/dnsserver\"\n")
	b.WriteString("\t\"github.com/coredns/coredns/coremain\"\n\n")
	for _, p := range plugins {
		fmt.Fprintf(&b, "\t_ %s\n", strconv.Quote("github.com/coredns/coredns/plugin/"+p))
	}
	b.WriteString(")\n\n// The server's directive list must be linked for the plugins to register in order.\nvar _ = dnsserver.Directives\n\nfunc main() { coremain.Run() }\n")
	return b.String()
}

// coreDNSGoMod requires CoreDNS and the client-go of the Kubernetes release,
// so its kubernetes plugin talks to that release's API and the Kubernetes
// packages it shares with the Kubernetes build come from the build cache.
func coreDNSGoMod(version string, rel release) string {
	return fmt.Sprintf("module fjord.local/coredns\n\ngo 1.26.0\n\nrequire (\n\tgithub.com/coredns/coredns %s\n\tk8s.io/client-go %s\n)\n",
		version, rel.staging())
}

// parseCoreDNSVersion reads `coredns -version` ("CoreDNS-1.15.0\nlinux/amd64, go1.26.8, ...") as "v1.15.0".
func parseCoreDNSVersion(out []byte) (string, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	v, ok := strings.CutPrefix(strings.TrimSpace(first), "CoreDNS-")
	if !ok || !semverRE.MatchString("v"+v) {
		return "", fmt.Errorf("coredns -version: unexpected output %q", tail(string(out), 200))
	}
	return "v" + v, nil
}

// EnsureCoreDNS makes a CoreDNS binary of cfg.CoreDNSVersion (default
// DefaultCoreDNSVersion) current in the cache, building it from the
// github.com/coredns/coredns module with the plugins of coreDNSPlugins, and
// returns its path. The Kubernetes release in cfg picks the client-go it uses.
func EnsureCoreDNS(ctx context.Context, cfg Config) (string, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	rel, err := parseRelease(c.Version)
	if err != nil {
		return "", err
	}
	version := c.CoreDNSVersion
	if version == "" {
		version = DefaultCoreDNSVersion
	}
	if !semverRE.MatchString(version) {
		return "", fmt.Errorf("coredns version %q is not of the form vMAJOR.MINOR.PATCH", version)
	}
	dir := filepath.Join(c.CacheDir, "coredns-"+version)
	bin := filepath.Join(dir, "bin", "coredns")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockDir(ctx, dir, c.Logf)
	if err != nil {
		return "", err
	}
	defer unlock()

	mod, main := coreDNSGoMod(version, rel), coreDNSMain(coreDNSPlugins())
	key := inputKey(mod, main)
	stampPath := filepath.Join(dir, ".module-stamp")
	old, _ := os.ReadFile(stampPath)
	prepared := string(old) == key
	if prepared && coreDNSCurrent(ctx, bin, version) {
		return bin, nil
	}
	g := c.runner()
	c.Logf("building coredns %s (plugins %s) into %s: a cold build takes about 3 minutes and ~1 GB of Go build cache, a warm one seconds; progress every %s",
		version, strings.Join(coreDNSPlugins(), ", "), filepath.Dir(bin), c.Heartbeat)
	start := time.Now()
	if !prepared {
		if err := writeFileAtomic(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
			return "", err
		}
		if err := writeFileAtomic(filepath.Join(dir, "main.go"), []byte(main), 0o644); err != nil {
			return "", err
		}
		if err := g.long(ctx, dir, "tidying the scratch module (go mod tidy)", "tidied the scratch module", "mod", "tidy"); err != nil {
			return "", err
		}
		if err := writeFileAtomic(stampPath, []byte(key), 0o644); err != nil {
			return "", err
		}
	}
	if err := g.build(ctx, dir, "coredns", "build", "-v", "-ldflags", "-s -w", "-o", bin, "."); err != nil {
		return "", err
	}
	if !coreDNSCurrent(ctx, bin, version) {
		return "", fmt.Errorf("built %s, but it does not report CoreDNS %s", bin, version)
	}
	c.Logf("coredns ready in %s after %s", bin, clock(time.Since(start)))
	return bin, nil
}

func coreDNSCurrent(ctx context.Context, bin, version string) bool {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, "-version").Output()
	if err != nil {
		return false
	}
	v, err := parseCoreDNSVersion(out)
	return err == nil && v == version
}
