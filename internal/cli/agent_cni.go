package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fjord-net/fjord/internal/cni"
)

// cniPluginsToInstall are the reference plugins the agent's image carries and puts on
// a node that lacks them: portmap (chained after fjord, so hostPort works) and
// loopback (containerd sets up every pod's lo with it).
var cniPluginsToInstall = []string{"portmap", "loopback"}

// installCNI puts the CNI plugin and its configuration on the node, as the agent's
// DaemonSet pod does on a real cluster: the plugin binary into --cni-bin-dir (as
// "fjord"), the reference plugins it chains with where missing, and the network
// configuration into --cni-conf-dir. Every file is replaced in one rename, so a
// runtime never execs or reads half a file.
func installCNI(f agentFlags, log *slog.Logger) error {
	version := f.cniVersion
	if f.cniBinDir != "" {
		if err := os.MkdirAll(f.cniBinDir, 0o755); err != nil {
			return fmt.Errorf("--cni-bin-dir: %w", err)
		}
		self, err := cniBinary()
		if err != nil {
			return err
		}
		if err := installFile(self, filepath.Join(f.cniBinDir, "fjord"), log); err != nil {
			return err
		}
		for _, p := range cniPluginsToInstall {
			dst := filepath.Join(f.cniBinDir, p)
			if _, err := os.Stat(dst); err == nil {
				continue // the node's own: leave it alone
			}
			if err := installFile(filepath.Join(f.cniPluginsFrom, p), dst, log); err != nil {
				return fmt.Errorf("installing the %s plugin (from --cni-plugins-from): %w", p, err)
			}
		}
		// A portmap older than spec 1.1.0 (Debian's stops at 1.0.0) gets a 1.0.0 list.
		if version == "1.1.0" && !pluginSupports(filepath.Join(f.cniBinDir, "portmap"), version) {
			version = "1.0.0"
			log.Info("the node's portmap plugin predates CNI spec 1.1.0; writing the network list at 1.0.0")
		}
	}
	if f.cniConfDir == "" {
		return nil
	}
	conf, err := cni.ConfListVersion(version, "fjord", f.runDir, f.cniDataDir, 0)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.cniConfDir, 0o755); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(f.cniConfDir, "10-fjord.conflist"), conf)
}

// cniBinary is the plugin to install: fjord-cni next to this binary (it starts
// faster), else this binary itself (it runs the plugin when CNI_COMMAND is set).
func cniBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if alone := filepath.Join(filepath.Dir(self), "fjord-cni"); isExecutable(alone) {
		return alone, nil
	}
	return self, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// installFile copies src to dst unless dst already has the same bytes.
func installFile(src, dst string, log *slog.Logger) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	tmp := dst + ".fjord-tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	log.Info("installed CNI plugin", "path", dst)
	return nil
}

// pluginSupports asks a CNI plugin (CNI_COMMAND=VERSION) whether it speaks version.
func pluginSupports(path, version string) bool {
	cmd := exec.Command(path)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	cmd.Stdin = strings.NewReader(`{"cniVersion":"0.4.0"}`)
	out, err := cmd.Output()
	if err != nil {
		return false
	}
	var v struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	return json.Unmarshal(out, &v) == nil && slices.Contains(v.SupportedVersions, version)
}
