package kubebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

var programNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Program builds a small standalone Go program from its source files (name
// -> content; a go.mod is added when missing) with the same settings as the
// Kubernetes builds (static, cached, locked), into
// CacheDir/programs/NAME-HASH/bin/NAME, and returns the binary's path. A
// program built from the same files with the same Go is reused. The lab's
// pause process is built this way from source embedded in fjord, so neither a
// checkout of fjord nor a download is needed.
func Program(ctx context.Context, cfg Config, name string, files map[string][]byte) (string, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	if !programNameRE.MatchString(name) {
		return "", fmt.Errorf("program name %q: want lower-case letters, digits and dashes", name)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("program %s: no source files", name)
	}
	files = withGoMod(name, files)
	names := make([]string, 0, len(files))
	for n := range files {
		if n != filepath.Base(n) || strings.HasPrefix(n, ".") {
			return "", fmt.Errorf("program %s: file name %q must be a plain name", name, n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	parts := []string{name}
	for _, n := range names {
		parts = append(parts, n, string(files[n]))
	}
	srcKey := inputKey(parts...)
	dir := filepath.Join(c.CacheDir, "programs", name+"-"+srcKey[:16])
	bin := filepath.Join(dir, "bin", name)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockDir(ctx, dir, c.Logf)
	if err != nil {
		return "", err
	}
	defer unlock()
	g := c.runner()
	gover, err := g.output(ctx, dir, "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	key := inputKey(srcKey, strings.TrimSpace(string(gover)), strings.Join(buildEnv(nil), " "))
	stampPath := filepath.Join(dir, "bin", "."+name+".stamp")
	if stampCurrent(stampPath, bin, key) {
		return bin, nil
	}
	for _, n := range names {
		if err := writeFileAtomic(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return "", err
		}
	}
	start := time.Now()
	if err := g.build(ctx, dir, name, "build", "-v", "-trimpath", "-ldflags", "-s -w", "-o", bin, "."); err != nil {
		return "", err
	}
	if err := writeStamp(stampPath, bin, key); err != nil {
		return "", err
	}
	c.Logf("%s ready in %s after %s", name, bin, clock(time.Since(start)))
	return bin, nil
}

// withGoMod adds a go.mod declaring a module of its own when files has none.
func withGoMod(name string, files map[string][]byte) map[string][]byte {
	if _, ok := files["go.mod"]; ok {
		return files
	}
	out := make(map[string][]byte, len(files)+1)
	for k, v := range files {
		out[k] = v
	}
	out["go.mod"] = []byte(fmt.Sprintf("module fjord.local/%s\n\ngo 1.26.0\n", name))
	return out
}
