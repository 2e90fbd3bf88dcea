package kubebuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive flock on dir/.lock, so that concurrent processes
// (parallel test packages, a lab and a benchmark) build a directory once: the
// others wait, then find the binaries current. The lock goes with the process,
// so a killed builder never leaves it held. While waiting it says so, once.
func lockDir(ctx context.Context, dir string, logf func(string, ...any)) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !said {
			logf("waiting for another process building in %s (it holds %s)", dir, f.Name())
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", f.Name(), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
