package lab

import (
	"context"
	"runtime"
	"time"
)

// Hog keeps one CPU busy until d has passed or ctx ends: the cpu-hog fault's worker
// (started in a node's namespace, marked as a lab process, so `lab down` stops it).
func Hog(ctx context.Context, d time.Duration) {
	runtime.GOMAXPROCS(1)
	deadline := time.Now().Add(d)
	x := uint64(1)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		for k := 0; k < 1_000_000; k++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
}
