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
