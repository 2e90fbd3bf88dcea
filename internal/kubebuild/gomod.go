package kubebuild

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// modulePath names the scratch module. It stays fixed: the module path is part
// of what the linker stamps into each binary, so changing it would relink
// everything once.
const modulePath = "fjord.local/kubernetes"

var (
	stagingReplaceRE = regexp.MustCompile(`(?m)^\s*(?:replace\s+)?(k8s\.io/[a-z0-9-]+)\s+=>\s+\./staging/`)
	zeroRequireRE    = regexp.MustCompile(`(?m)^\s*(?:require\s+)?(k8s\.io/[a-z0-9-]+)\s+v0\.0\.0(?:\s|$)`)
)

// stagingModules returns, sorted, the modules that kubernetes' go.mod both
// replaces with a ./staging path and requires as v0.0.0: a module outside the
// repository must replace each of them with its published version. (Staging
// modules nothing requires, such as sample-controller, are left out.)
func stagingModules(kubeGoMod []byte) []string {
	required := map[string]bool{}
	for _, m := range zeroRequireRE.FindAllSubmatch(kubeGoMod, -1) {
		required[string(m[1])] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range stagingReplaceRE.FindAllSubmatch(kubeGoMod, -1) {
		name := string(m[1])
		if required[name] && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// goMod is the scratch module's go.mod before `go mod tidy` fills in the
// requirements: k8s.io/kubernetes at the release and one replace per staging
// module, pointing at the staging version published with it.
func goMod(r release, kubeGoMod []byte) (string, error) {
	mods := stagingModules(kubeGoMod)
	if len(mods) == 0 {
		return "", fmt.Errorf("k8s.io/kubernetes %s: its go.mod names no staging modules (replace ... => ./staging/...)", r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes %s\n\n", modulePath, r)
	for _, m := range mods {
		fmt.Fprintf(&b, "replace %s => %s %s\n", m, m, r.staging())
	}
	return b.String(), nil
}

// toolsGo is a file that is never compiled (build tag "tools") but makes `go
// mod tidy` keep every module the targets need: one blank import per package.
func toolsGo(imports []string) string {
	imports = append([]string(nil), imports...)
	sort.Strings(imports)
	var b strings.Builder
	b.WriteString("//go:build tools\n\n")
	b.WriteString("// Package kubernetes pins what this scratch module builds (written by fjord's\n")
	b.WriteString("// internal/kubebuild; edits are overwritten).\n")
	b.WriteString("package kubernetes\n\nimport (\n")
	last := ""
	for _, p := range imports {
		if p == last {
			continue
		}
		last = p
		fmt.Fprintf(&b, "\t_ %s\n", strconv.Quote(p))
	}
	b.WriteString(")\n")
	return b.String()
}

// testImports returns the non-standard-library packages imported by the test
// files (*_test.go) of the package in dir: what `go test -c` of it compiles
// besides the package itself.
func testImports(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no test files in %s", dir)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		for _, im := range af.Imports {
			p, err := strconv.Unquote(im.Path.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: import %s: %w", f, im.Path.Value, err)
			}
			if isStdlib(p) || seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// isStdlib reports whether an import path belongs to the standard library: its
// first element has no dot.
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
