package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// kube-proxy and kube-apiserver are built from the k8s.io/kubernetes Go module
// in a scratch module of their own, outside fjord's: Kubernetes' go.mod replaces
// its 30-odd staging modules (k8s.io/api, client-go, ...) with ./staging paths
// and requires them as v0.0.0, so a consumer must replace each with its
// published v0.x.y. The build takes minutes and gigabytes of cache the first
// time; the binaries are kept in the cache directory and reused while their
// --version matches.

// kubeBinaries returns a directory with kube-apiserver and kube-proxy of the
// given version: dir itself when set (the -kube-bin flag), else the cache,
// building them there first if needed.
func kubeBinaries(ctx context.Context, dir, version, cache string, logf func(string, ...any)) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no -kube-cache and no user cache directory: %w", err)
		}
		cache = filepath.Join(base, "fjord-bench")
	}
	mod := filepath.Join(cache, "kubernetes-"+version)
	bin := filepath.Join(mod, "bin")
	if kubeVersionOK(ctx, bin, version) {
		return bin, nil
	}
	logf("kube: building kube-apiserver and kube-proxy %s in %s (first time: several minutes, about 4 GB of Go build cache)", version, mod)
	start := time.Now()
	if err := buildKube(ctx, mod, version); err != nil {
		return "", err
	}
	if !kubeVersionOK(ctx, bin, version) {
		return "", fmt.Errorf("kube binaries built in %s do not report %s", bin, version)
	}
	logf("kube: built in %s", time.Since(start).Round(time.Second))
	return bin, nil
}

// kubeVersionOK reports whether both binaries exist and say they are version.
func kubeVersionOK(ctx context.Context, bin, version string) bool {
	for _, n := range []string{"kube-apiserver", "kube-proxy"} {
		out, err := exec.CommandContext(ctx, filepath.Join(bin, n), "--version").Output()
		if err != nil || strings.TrimSpace(string(out)) != "Kubernetes "+version {
			return false
		}
	}
	return true
}

// stagingVersion maps a Kubernetes release (v1.37.2) to its staging modules'
// published version (v0.37.2).
func stagingVersion(version string) (string, error) {
	m := regexp.MustCompile(`^v1\.(\d+\.\d+)$`).FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("kube version %q is not of the form v1.MINOR.PATCH", version)
	}
	return "v0." + m[1], nil
}

// stagingReplaces returns the replace lines the scratch module needs: one per
// module that kubernetes' go.mod both replaces with a ./staging path and
// requires as v0.0.0.
func stagingReplaces(kubeGoMod []byte, staging string) []string {
	replaced := regexp.MustCompile(`(?m)^\s*(k8s\.io/[a-z0-9-]+) => \./staging/`)
	required := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(k8s\.io/[a-z0-9-]+) v0\.0\.0\b`).FindAllSubmatch(kubeGoMod, -1) {
		required[string(m[1])] = true
	}
	var out []string
	for _, m := range replaced.FindAllSubmatch(kubeGoMod, -1) {
		if name := string(m[1]); required[name] {
			out = append(out, fmt.Sprintf("replace %s => %s %s", name, name, staging))
		}
	}
	return out
}

func buildKube(ctx context.Context, mod, version string) error {
	staging, err := stagingVersion(version)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(mod, "bin"), 0o755); err != nil {
		return err
	}
	goCmd := func(timeout time.Duration, args ...string) ([]byte, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, "go", args...)
		cmd.Dir = mod
		// The scratch module stands alone: no workspace, no flags of the caller's.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false -mod=mod")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String(), 2000))
		}
		return out, nil
	}
	gomod := fmt.Sprintf("module fjordbench/kubernetes\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes %s\n", version)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	tools := "//go:build tools\n\n// Package kubernetes only pins the commands this scratch module builds.\npackage kubernetes\n\nimport (\n\t_ \"k8s.io/kubernetes/cmd/kube-apiserver\"\n\t_ \"k8s.io/kubernetes/cmd/kube-proxy\"\n)\n"
	if err := os.WriteFile(filepath.Join(mod, "tools.go"), []byte(tools), 0o644); err != nil {
		return err
	}
	out, err := goCmd(10*time.Minute, "mod", "download", "-json", "k8s.io/kubernetes@"+version)
	if err != nil {
		return err
	}
	var info struct{ GoMod, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.GoMod == "" {
		return fmt.Errorf("go mod download k8s.io/kubernetes@%s: %v %s", version, err, info.Error)
	}
	kubeMod, err := os.ReadFile(info.GoMod)
	if err != nil {
		return err
	}
	replaces := stagingReplaces(kubeMod, staging)
	if len(replaces) == 0 {
		return fmt.Errorf("found no staging modules in %s", info.GoMod)
	}
	gomod += "\n" + strings.Join(replaces, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if _, err := goCmd(15*time.Minute, "mod", "tidy"); err != nil {
		return err
	}
	v := "k8s.io/component-base/version"
	minor := strings.SplitN(strings.TrimPrefix(version, "v1."), ".", 2)[0]
	ldflags := fmt.Sprintf("-s -w -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean", v, version, v, v, minor, v)
	_, err = goCmd(45*time.Minute, "build", "-p", "1", "-ldflags", ldflags, "-o", "bin/",
		"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-proxy")
	return err
}

// tail returns the last n bytes of s, starting at a line.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if sc := bufio.NewScanner(strings.NewReader(s)); sc.Scan() {
		s = s[len(sc.Text()):]
	}
	return strings.TrimLeft(s, "\n")
}
