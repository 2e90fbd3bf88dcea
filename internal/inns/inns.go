// Package inns runs work inside a network namespace given by path (/run/netns/NAME,
// /proc/PID/ns/net, or "" for the caller's own): Go code on a thread pinned there (the
// CNI ns package's Do), nftables transactions through knftables (whose nft child
// inherits the pinned thread's namespace), and sysctls, which /proc/sys/net answers
// for the namespace of the thread that opens them.
package inns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"sigs.k8s.io/knftables"
)

// Do runs f on a thread inside the namespace at path ("" = the current one).
func Do(path string, f func() error) error {
	if path == "" {
		return f()
	}
	return ns.WithNetNSPath(path, func(ns.NetNS) error { return f() })
}

// NFT runs one knftables transaction for table (family) inside the namespace.
func NFT(path string, family knftables.Family, table string, build func(tx *knftables.Transaction)) error {
	return Do(path, func() error {
		nft, err := knftables.New(family, table)
		if err != nil {
			return err
		}
		tx := nft.NewTransaction()
		build(tx)
		return nft.Run(context.Background(), tx)
	})
}

// NFTList runs `nft ARGS...` inside the namespace and returns its output.
func NFTList(path string, args ...string) (string, error) {
	var out string
	err := Do(path, func() error {
		b, err := execOutput("nft", args...)
		out = string(b)
		return err
	})
	return out, err
}

// sysctlPath turns "net.ipv4.ip_forward" into its /proc/sys path, refusing anything
// that is not a plain dotted name.
func sysctlPath(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/ ") || strings.Contains(name, "..") {
		return "", fmt.Errorf("sysctl %q is not a dotted name", name)
	}
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")), nil
}

// Sysctl reads a sysctl inside the namespace (trimmed).
func Sysctl(path, name string) (string, error) {
	p, err := sysctlPath(name)
	if err != nil {
		return "", err
	}
	var v string
	err = Do(path, func() error {
		b, err := os.ReadFile(p)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// SetSysctl writes a sysctl inside the namespace. Never call it with path "": the
// root namespace's settings are not fjord's to change.
func SetSysctl(path, name, value string) error {
	if path == "" {
		return fmt.Errorf("sysctl %s: refusing to change the root namespace", name)
	}
	p, err := sysctlPath(name)
	if err != nil {
		return err
	}
	return Do(path, func() error { return os.WriteFile(p, []byte(value), 0o644) })
}
