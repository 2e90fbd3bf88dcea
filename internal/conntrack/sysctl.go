package conntrack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
)

// ApplySysctls writes conntrack settings (what kube-proxy's conntrack section asks
// for) under procSys (/proc/sys, or a host-path mount of it in a container whose
// /proc/sys is read-only). A setting already at its value is not written; a
// RaiseOnly one is written only upwards. It returns what it changed; a setting the
// kernel does not let this network namespace change (nf_conntrack_max outside the
// host's) is skipped, and other failures are returned, naming the file.
func ApplySysctls(procSys string, want []proxyconfig.Sysctl) (changed []string, err error) {
	var errs []error
	for _, s := range want {
		path := filepath.Join(procSys, s.Path)
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			errs = append(errs, rerr)
			continue
		}
		cur, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr == nil && (cur == s.Value || s.RaiseOnly && cur >= s.Value) {
			continue
		}
		if werr := os.WriteFile(path, []byte(strconv.Itoa(s.Value)), 0o644); werr != nil {
			if s.RaiseOnly && errors.Is(werr, fs.ErrPermission) {
				continue // per-host, read-only in a pod's or node's own namespace
			}
			errs = append(errs, fmt.Errorf("%s: %w", path, werr))
			continue
		}
		changed = append(changed, fmt.Sprintf("%s=%d", s.Path, s.Value))
	}
	return changed, errors.Join(errs...)
}
