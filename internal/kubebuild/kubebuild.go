// Package kubebuild builds Kubernetes binaries of one release from the
// k8s.io/kubernetes Go module, and CoreDNS from its module, into a cache
// shared by the lab, the tests and the benchmarks. Everything comes from the
// Go module proxy; nothing prebuilt is downloaded.
//
// k8s.io/kubernetes cannot be required like an ordinary module: its go.mod
// replaces its 30-odd staging modules (k8s.io/api, client-go, ...) with
// ./staging paths and requires them as v0.0.0. The builder therefore writes a
// scratch module of its own (the cache directory) that requires the release
// and replaces each staging module with its published v0 version, then builds
// only the targets asked for. Binaries are reused while they report the
// release (--version) or, for those without a usable --version, while a stamp
// with a hash of their inputs matches. A file lock makes concurrent processes
// build once. A cold build takes minutes and gigabytes of Go build cache, so
// builds report what they do and a heartbeat while they run.
package kubebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

const (
	// DefaultVersion is the Kubernetes release built when Config.Version is empty.
	DefaultVersion = "v1.37.2"
	// CacheEnv names the environment variable that moves the cache (see DefaultCacheDir).
	CacheEnv = "FJORD_KUBE_CACHE"
)

// Config says what to build and where; the zero value is usable.
type Config struct {
	// Version is the Kubernetes release (v1.MINOR.PATCH); default DefaultVersion.
	Version string
	// CoreDNSVersion is the CoreDNS release EnsureCoreDNS builds; default DefaultCoreDNSVersion.
	CoreDNSVersion string
	// CacheDir holds one scratch module per release (kubernetes-<version>/, its
	// binaries in bin/) and CoreDNS's (coredns-<version>/); default DefaultCacheDir().
	CacheDir string
	// Logf receives progress lines; default: standard error, prefixed "kubebuild: ".
	Logf func(format string, args ...any)
	// Heartbeat is how often a running build reports; default 15s.
	Heartbeat time.Duration
	// Go is the go command; default "go" on PATH, else /usr/local/go/bin/go.
	Go string
	// Nice is the CPU niceness builds run at; 0 means the default 10, negative
	// means unchanged.
	Nice int
}

// DefaultCacheDir is $FJORD_KUBE_CACHE when set, else fjord/ under the user's
// cache directory (~/.cache/fjord, or $XDG_CACHE_HOME/fjord).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no $%s and no user cache directory: %w", CacheEnv, err)
	}
	return filepath.Join(base, "fjord"), nil
}

// withDefaults fills in the zero fields.
func (c Config) withDefaults() (Config, error) {
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return c, err
		}
		c.CacheDir = d
	}
	if !filepath.IsAbs(c.CacheDir) {
		abs, err := filepath.Abs(c.CacheDir)
		if err != nil {
			return c, fmt.Errorf("cache directory %q: %w", c.CacheDir, err)
		}
		c.CacheDir = abs
	}
	if c.Logf == nil {
		c.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "kubebuild: "+format+"\n", args...) }
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Go == "" {
		c.Go = "go"
		if _, err := exec.LookPath("go"); err != nil {
			c.Go = "/usr/local/go/bin/go"
		}
	}
	if c.Nice == 0 {
		c.Nice = 10
	}
	return c, nil
}

func (c Config) runner() goRunner {
	return goRunner{goBin: c.Go, nice: c.Nice, logf: c.Logf, heartbeat: c.Heartbeat}
}

// Binaries is a directory of built targets of one release.
type Binaries struct {
	// Dir is the bin directory.
	Dir string
	// Version is the Kubernetes release they were built from.
	Version string
}

// Path is where target t lives.
func (b Binaries) Path(t Target) string { return filepath.Join(b.Dir, string(t)) }

// ModuleDir is the scratch module of cfg's release; its bin/ holds the binaries.
func ModuleDir(cfg Config) (string, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	if _, err := parseRelease(c.Version); err != nil {
		return "", err
	}
	return filepath.Join(c.CacheDir, "kubernetes-"+c.Version), nil
}

// Ensure makes the targets current in the cache and returns where they are:
// binaries that are already current are left alone; the others are built,
// each kind in one go command. Concurrent callers on the same cache wait for
// each other and build once.
func Ensure(ctx context.Context, cfg Config, targets ...Target) (Binaries, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return Binaries{}, err
	}
	rel, err := parseRelease(c.Version)
	if err != nil {
		return Binaries{}, err
	}
	if len(targets) == 0 {
		return Binaries{}, errors.New("kubebuild: no targets asked for")
	}
	var want []Target
	seen := map[Target]bool{}
	for _, t := range targets {
		if _, err := infoOf(t); err != nil {
			return Binaries{}, err
		}
		if !seen[t] {
			seen[t] = true
			want = append(want, t)
		}
	}
	b := &builder{cfg: c, rel: rel, g: c.runner()}
	b.dir = filepath.Join(c.CacheDir, "kubernetes-"+rel.String())
	bins := Binaries{Dir: filepath.Join(b.dir, "bin"), Version: rel.String()}
	if err := os.MkdirAll(bins.Dir, 0o755); err != nil {
		return Binaries{}, err
	}
	unlock, err := lockDir(ctx, b.dir, c.Logf)
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()

	stale, err := b.stale(ctx, want)
	if err != nil || len(stale) == 0 {
		return bins, err
	}
	mins, gb := coldEstimate(stale)
	c.Logf("building %s (Kubernetes %s) into %s: a cold build takes about %s and ~%d GB of Go build cache, a warm one seconds to a minute; progress every %s",
		joinTargets(stale), rel, bins.Dir, minutes(mins), gb, c.Heartbeat)
	start := time.Now()
	if err := b.prepareModule(ctx); err != nil {
		return Binaries{}, err
	}
	// The module may have changed (a new go.sum): decide again.
	if stale, err = b.stale(ctx, want); err != nil {
		return Binaries{}, err
	}
	if err := b.build(ctx, stale); err != nil {
		return Binaries{}, err
	}
	if still, err := b.stale(ctx, stale); err != nil {
		return Binaries{}, err
	} else if len(still) > 0 {
		return Binaries{}, fmt.Errorf("built %s in %s, but they do not report Kubernetes %s", joinTargets(still), bins.Dir, rel)
	}
	c.Logf("%s ready in %s after %s", joinTargets(stale), bins.Dir, clock(time.Since(start)))
	return bins, nil
}

// SourceDir returns the unpacked k8s.io/kubernetes module of cfg's release in
// the Go module cache (downloading it if needed): test fixtures such as the
// agnhost porter's localhost.crt live there.
func SourceDir(ctx context.Context, cfg Config) (string, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	rel, err := parseRelease(c.Version)
	if err != nil {
		return "", err
	}
	dir, _, err := downloadModule(ctx, c.runner(), os.TempDir(), "k8s.io/kubernetes", rel.String())
	return dir, err
}

// downloadModule fetches path@version into the module cache and returns its
// directory and go.mod file.
func downloadModule(ctx context.Context, g goRunner, dir, path, version string) (src, gomod string, err error) {
	out, err := g.output(ctx, dir, "mod", "download", "-json", path+"@"+version)
	if err != nil {
		return "", "", err
	}
	var info struct{ Dir, GoMod, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	if info.Error != "" || info.Dir == "" || info.GoMod == "" {
		return "", "", fmt.Errorf("go mod download %s@%s: %s", path, version, info.Error)
	}
	return info.Dir, info.GoMod, nil
}
