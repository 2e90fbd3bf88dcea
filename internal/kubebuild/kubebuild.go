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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// builder builds targets of one release in its scratch module dir.
type builder struct {
	cfg Config
	rel release
	g   goRunner
	dir string
}

func (b *builder) bin(t Target) string { return filepath.Join(b.dir, "bin", string(t)) }

func (b *builder) stampPath(t Target) string {
	return filepath.Join(b.dir, "bin", "."+string(t)+".stamp")
}

// stale returns the targets that are not current.
func (b *builder) stale(ctx context.Context, ts []Target) ([]Target, error) {
	var keys map[Target]string
	var out []Target
	for _, t := range ts {
		info, _ := infoOf(t)
		if info.kind == kindCommand {
			if !b.versionCurrent(ctx, t) {
				out = append(out, t)
			}
			continue
		}
		if keys == nil {
			var err error
			if keys, err = b.stampKeys(ctx); err != nil {
				return nil, err
			}
		}
		if k, ok := keys[t]; !ok || !stampCurrent(b.stampPath(t), b.bin(t), k) {
			out = append(out, t)
		}
	}
	return out, nil
}

// versionCurrent reports whether command t exists and reports the release.
func (b *builder) versionCurrent(ctx context.Context, t Target) bool {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, b.bin(t), versionArgs(t)...).Output()
	if err != nil {
		return false
	}
	v, err := parseVersionOutput(t, out)
	return err == nil && v == b.rel.String()
}

// parseVersionOutput extracts the release a command reports: "Kubernetes
// v1.37.2" from --version, or kubectl's JSON client version.
func parseVersionOutput(t Target, out []byte) (string, error) {
	if t == Kubectl {
		var v struct {
			ClientVersion struct {
				GitVersion string `json:"gitVersion"`
			} `json:"clientVersion"`
		}
		if err := json.Unmarshal(out, &v); err != nil || v.ClientVersion.GitVersion == "" {
			return "", fmt.Errorf("kubectl version: unexpected output %q", tail(string(out), 200))
		}
		return v.ClientVersion.GitVersion, nil
	}
	s := strings.TrimSpace(string(out))
	v, ok := strings.CutPrefix(s, "Kubernetes ")
	if !ok || strings.ContainsAny(v, " \n") {
		return "", fmt.Errorf("%s --version: unexpected output %q", t, tail(s, 200))
	}
	return v, nil
}

// stampKeys computes the stamp key of every stamped target from what its build
// depends on: release, package, link flags, Go version, the module's go.sum
// and the fixed build environment. Without a go.sum (module not prepared)
// there are no keys, so every stamped target is stale.
func (b *builder) stampKeys(ctx context.Context) (map[Target]string, error) {
	sum, err := os.ReadFile(filepath.Join(b.dir, "go.sum"))
	if errors.Is(err, os.ErrNotExist) {
		return map[Target]string{}, nil
	} else if err != nil {
		return nil, err
	}
	gover, err := b.g.output(ctx, b.dir, "env", "GOVERSION")
	if err != nil {
		return nil, err
	}
	sumHash := sha256.Sum256(sum)
	keys := map[Target]string{}
	for _, t := range AllTargets() {
		info, _ := infoOf(t)
		if info.kind == kindCommand {
			continue
		}
		keys[t] = inputKey(b.rel.String(), info.pkg, b.ldflags(info.kind), strings.TrimSpace(string(gover)),
			hex.EncodeToString(sumHash[:]), strings.Join(buildEnv(nil), " "))
	}
	return keys, nil
}

func (b *builder) ldflags(k buildKind) string {
	if k == kindTool {
		return "-s -w"
	}
	return b.rel.ldflags()
}

// moduleTargets are the packages the scratch module pins besides the e2e
// test's imports.
func moduleTargets() []string {
	var out []string
	for _, t := range AllTargets() {
		info, _ := infoOf(t)
		out = append(out, info.pkg)
	}
	return out
}

// prepareModule writes the scratch module (go.mod, tools.go) and tidies it,
// unless it was already prepared from the same inputs.
func (b *builder) prepareModule(ctx context.Context) error {
	src, gomodPath, err := downloadModule(ctx, b.g, b.dir, "k8s.io/kubernetes", b.rel.String())
	if err != nil {
		return err
	}
	kubeMod, err := os.ReadFile(gomodPath)
	if err != nil {
		return err
	}
	mod, err := goMod(b.rel, kubeMod)
	if err != nil {
		return err
	}
	e2eImports, err := testImports(filepath.Join(src, "test", "e2e"))
	if err != nil {
		return fmt.Errorf("k8s.io/kubernetes %s: %w", b.rel, err)
	}
	tools := toolsGo(append(moduleTargets(), e2eImports...))
	key := inputKey(mod, tools)
	stampPath := filepath.Join(b.dir, ".module-stamp")
	if old, err := os.ReadFile(stampPath); err == nil && string(old) == key {
		if _, err := os.Stat(filepath.Join(b.dir, "go.sum")); err == nil {
			return nil
		}
	}
	b.cfg.Logf("writing the scratch module %s for k8s.io/kubernetes %s (go mod tidy)", b.dir, b.rel)
	if err := writeFileAtomic(filepath.Join(b.dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(b.dir, "tools.go"), []byte(tools), 0o644); err != nil {
		return err
	}
	if err := b.g.long(ctx, b.dir, "tidying the scratch module (go mod tidy)", "tidied the scratch module", "mod", "tidy"); err != nil {
		return err
	}
	return writeFileAtomic(stampPath, []byte(key), 0o644)
}

// build builds the stale targets, one go command per kind, and stamps those
// checked by stamp.
func (b *builder) build(ctx context.Context, ts []Target) error {
	byKind := map[buildKind][]Target{}
	for _, t := range ts {
		info, _ := infoOf(t)
		byKind[info.kind] = append(byKind[info.kind], t)
	}
	binDir := filepath.Join(b.dir, "bin") + string(filepath.Separator)
	for _, k := range []buildKind{kindCommand, kindTool, kindTest} {
		group := byKind[k]
		if len(group) == 0 {
			continue
		}
		var pkgs []string
		for _, t := range group {
			info, _ := infoOf(t)
			pkgs = append(pkgs, info.pkg)
		}
		what := joinTargets(group)
		if k == kindTest {
			// `go test -c` has no -v that lists packages: compile the test's
			// dependencies with `go build -v` first (counted), then link.
			src, _, err := downloadModule(ctx, b.g, b.dir, "k8s.io/kubernetes", b.rel.String())
			if err != nil {
				return err
			}
			deps, err := testImports(filepath.Join(src, "test", "e2e"))
			if err != nil {
				return err
			}
			if err := b.g.build(ctx, b.dir, what+" (dependencies)", append([]string{"build", "-v"}, append(pkgs, deps...)...)...); err != nil {
				return err
			}
			if err := b.g.build(ctx, b.dir, what, "test", "-c", "-ldflags", b.ldflags(k), "-o", filepath.Join(binDir, string(E2ETest)), pkgs[0]); err != nil {
				return err
			}
		} else {
			args := append([]string{"build", "-v", "-ldflags", b.ldflags(k), "-o", binDir}, pkgs...)
			if err := b.g.build(ctx, b.dir, what, args...); err != nil {
				return err
			}
		}
		if k == kindCommand {
			continue
		}
		keys, err := b.stampKeys(ctx)
		if err != nil {
			return err
		}
		for _, t := range group {
			if err := writeStamp(b.stampPath(t), b.bin(t), keys[t]); err != nil {
				return fmt.Errorf("built %s but: %w", t, err)
			}
		}
	}
	return nil
}

// coldEstimate is what building ts costs with an empty Go build cache, in
// minutes and gigabytes of cache, from builds measured on a 2-core machine
// (docs/kubernetes-build.md).
func coldEstimate(ts []Target) (minutes, gb int) {
	var kube, e2e, agnhost bool
	for _, t := range ts {
		switch t {
		case Ginkgo, RegressionIssue74839:
		case E2ETest:
			kube, e2e = true, true
		case Agnhost:
			kube, agnhost = true, true
		default:
			kube = true
		}
	}
	if !kube {
		return 1, 1
	}
	minutes, gb = 14, 4
	if e2e {
		minutes, gb = minutes+3, gb+1
	}
	if agnhost {
		minutes += 3
	}
	return minutes, gb
}
