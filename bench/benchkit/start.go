package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// Start is how every lab benchmark begins: it must run as root (it creates network
// namespaces), its context ends after limit or on SIGINT, SIGTERM or SIGHUP (so the lab
// is torn down either way), and fjordPath is made absolute and must exist. stop
// releases the context; on error there is nothing to stop.
func Start(fjordPath string, limit time.Duration) (ctx context.Context, stop func(), fjord string, err error) {
	if os.Geteuid() != 0 {
		return nil, nil, "", errors.New("must run as root (it creates network namespaces)")
	}
	if fjord, err = filepath.Abs(fjordPath); err == nil {
		_, err = os.Stat(fjord)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("fjord binary: %w (run make build first)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	return ctx, func() { stopSignals(); cancel() }, fjord, nil
}
