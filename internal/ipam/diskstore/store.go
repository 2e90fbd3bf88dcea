// Package diskstore is the on-disk ipam.Store, laid out like host-local's: a directory
// per network holding one file per allocated address (named by the address, holding
// "containerID\nifname\n"), a last_reserved_ip file and a lock file. The lock is an
// flock(2) on the lock file, so it excludes other processes and other Store values in
// the same process alike.
package diskstore

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/ipam"
)

const (
	lockFile = "lock"
	lastFile = "last_reserved_ip"
)

// Store is one network's allocation directory. Close it when done.
type Store struct {
	dir  string
	lock *os.File
}

var _ ipam.Store = (*Store)(nil)

// Open creates dir if needed and opens its lock file.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, lock: f}, nil
}

// Close releases the lock file (and with it the lock, if held).
func (s *Store) Close() error { return s.lock.Close() }

// Lock takes the exclusive flock, waiting for other holders.
func (s *Store) Lock() error {
	for {
		err := unix.Flock(int(s.lock.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// Unlock releases the flock.
func (s *Store) Unlock() error { return unix.Flock(int(s.lock.Fd()), unix.LOCK_UN) }

// List reads every allocation file. Files whose names are not addresses are ignored.
func (s *Store) List() ([]ipam.Allocation, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []ipam.Allocation
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		o, pod := parseOwner(b)
		out = append(out, ipam.Allocation{IP: ip, Owner: o, Pod: pod})
	}
	return out, nil
}

// parseOwner reads "containerID\nifname" (host-local's layout; it writes "\r\n", both
// are read) and fjord's optional third line, the pod's "namespace/name".
func parseOwner(b []byte) (ipam.Owner, string) {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	o := ipam.Owner{ContainerID: strings.TrimSpace(lines[0])}
	if len(lines) > 1 {
		o.IfName = strings.TrimSpace(lines[1])
	}
	pod := ""
	if len(lines) > 2 {
		pod = strings.TrimSpace(lines[2])
	}
	return o, pod
}

// Reserve creates a.IP's file exclusively and records it as the last reserved address.
func (s *Store) Reserve(a ipam.Allocation) (bool, error) {
	path := filepath.Join(s.dir, a.IP.String())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if a.Pod != "" {
		_, err = fmt.Fprintf(f, "%s\n%s\n%s\n", a.Owner.ContainerID, a.Owner.IfName, a.Pod)
	} else {
		_, err = fmt.Fprintf(f, "%s\n%s\n", a.Owner.ContainerID, a.Owner.IfName)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, lastFile), []byte(a.IP.String()), 0o644)
	}
	if err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}

// Release removes ip's file.
func (s *Store) Release(ip netip.Addr) error {
	err := os.Remove(filepath.Join(s.dir, ip.String()))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// LastReserved reads the last reserved address; a missing or unreadable file means none.
func (s *Store) LastReserved() (netip.Addr, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, lastFile))
	if errors.Is(err, os.ErrNotExist) {
		return netip.Addr{}, nil
	}
	if err != nil {
		return netip.Addr{}, err
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return netip.Addr{}, nil // a torn write after a crash: start from the beginning
	}
	return ip, nil
}
