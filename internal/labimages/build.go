package labimages

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/ociimage"
)

//go:embed pause/main.go
var pauseSource []byte

// Config says where the lab images go and where their inputs come from.
type Config struct {
	// Dir receives one tarball per image; default images/ under the
	// Kubernetes cache directory (kubebuild.DefaultCacheDir()).
	Dir string
	// Kube configures the builds of agnhost, regression-issue-74839, CoreDNS
	// and pause (cache, version, progress).
	Kube kubebuild.Config
	// Host is where the host programs are; without Busybox it is
	// DefaultHost(), and without BusyboxApplets they are asked of its busybox.
	Host Host
}

// Built is one image tarball.
type Built struct {
	// File is the tarball, for `ctr -n k8s.io images import FILE`.
	File  string
	Image ociimage.Image
	// Written is false when an up-to-date tarball was reused.
	Written bool
}

// Applets lists busybox's applets (`busybox --list-full`).
func Applets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w (install busybox-static: scripts/install-deps.sh)", busybox, err)
	}
	return strings.Fields(string(out)), nil
}

// BuildPause builds the pause program from the source embedded in fjord
// (internal/labimages/pause) and returns its path.
func BuildPause(ctx context.Context, kube kubebuild.Config) (string, error) {
	return kubebuild.Program(ctx, kube, "pause", map[string][]byte{"main.go": pauseSource})
}

// Build makes every lab image current in cfg.Dir: it builds (or finds in
// the cache) agnhost, regression-issue-74839, CoreDNS and pause, then writes
// the tarballs whose inputs changed. Fjord's own image is separate
// (WriteFjord): it is built from a fjord build, not from the cache.
func Build(ctx context.Context, cfg Config) ([]Built, error) {
	if cfg.Dir == "" {
		base := cfg.Kube.CacheDir
		if base == "" {
			d, err := kubebuild.DefaultCacheDir()
			if err != nil {
				return nil, err
			}
			base = d
		}
		cfg.Dir = filepath.Join(base, "images")
	}
	h := cfg.Host
	if h.Busybox == "" {
		h = DefaultHost()
	}
	if len(h.BusyboxApplets) == 0 {
		a, err := Applets(ctx, h.Busybox)
		if err != nil {
			return nil, err
		}
		h.BusyboxApplets = a
	}
	bins, err := kubebuild.Ensure(ctx, cfg.Kube, kubebuild.Agnhost, kubebuild.RegressionIssue74839)
	if err != nil {
		return nil, err
	}
	src, err := kubebuild.SourceDir(ctx, cfg.Kube)
	if err != nil {
		return nil, err
	}
	coredns, err := kubebuild.EnsureCoreDNS(ctx, cfg.Kube)
	if err != nil {
		return nil, err
	}
	pause, err := BuildPause(ctx, cfg.Kube)
	if err != nil {
		return nil, err
	}
	images := []struct {
		file string
		spec ociimage.Spec
	}{
		{"pause.tar", Pause(pause)},
		{"busybox.tar", Busybox(h)},
		{"agnhost.tar", Agnhost(h, AgnhostInputs{Agnhost: bins.Path(kubebuild.Agnhost), CoreDNS: coredns, KubeSource: src})},
		{"regression-issue-74839.tar", RegressionIssue74839(bins.Path(kubebuild.RegressionIssue74839))},
		{"distroless-iptables.tar", DistrolessIptables(h)},
		{"coredns.tar", CoreDNS(coredns)},
	}
	logf := cfg.Kube.Logf
	if logf == nil {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "labimages: "+format+"\n", args...) }
	}
	var out []Built
	for _, im := range images {
		start := time.Now()
		path := filepath.Join(cfg.Dir, im.file)
		img, written, err := ociimage.Ensure(path, im.spec)
		if err != nil {
			return nil, hint(err)
		}
		if written {
			logf("wrote %s (%s, %d MB) in %s", path, strings.Join(img.Tags, ", "), img.Size>>20, time.Since(start).Round(time.Millisecond))
		}
		out = append(out, Built{File: path, Image: img, Written: written})
	}
	return out, nil
}

// WriteFjord writes fjord's image to path.
func WriteFjord(path string, in FjordInputs) (ociimage.Image, error) {
	img, err := ociimage.Write(path, Fjord(in))
	return img, hint(err)
}

// hint adds what to do when a host program is missing.
func hint(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (the images copy programs from this machine: run scripts/install-deps.sh, or `make deps`)", err)
	}
	return err
}
