package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// ping runs iputils ping in a namespace.
func ping(ctx context.Context, ns string, args ...string) (string, error) {
	out, err := benchkit.RunCmd(ctx, time.Minute, nil, "ip", append([]string{"netns", "exec", ns, "ping"}, args...)...)
	return string(out), err
}

// pingSearchMatrix finds the path MTU of every ordered pair on both layers the usual
// way: a binary search with `ping -M do -c1 -W1 -s SIZE`, one ping per step, pair after
// pair (fjord mtu's algorithm without its parallelism, its ICMP hints and its 300 ms
// wait).
func pingSearchMatrix(ctx context.Context, eps []endpoint) error {
	for _, a := range eps {
		for _, b := range eps {
			if a.Layer != b.Layer || a.Name == b.Name {
				continue
			}
			lo, hi := 576, 1501
			if a.Layer == "overlay" {
				hi = 1451
			}
			for hi-lo > 1 {
				mid := (lo + hi) / 2
				if _, err := ping(ctx, a.Netns, "-M", "do", "-c1", "-W1", "-q", "-s", fmt.Sprint(mid-28), b.Addr); err == nil {
					lo = mid
				} else {
					hi = mid
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	return nil
}

// pingMatrix pings every ordered pair on both layers, count probes 10 ms apart, pair
// after pair, as an operator's loop over `ping -c N -i 0.01` does.
func pingMatrix(ctx context.Context, eps []endpoint, count int) error {
	for _, a := range eps {
		for _, b := range eps {
			if a.Layer != b.Layer || a.Name == b.Name {
				continue
			}
			out, err := ping(ctx, a.Netns, "-c", fmt.Sprint(count), "-i", "0.01", "-W1", "-q", b.Addr)
			if err != nil && !strings.Contains(out, "packet loss") {
				return fmt.Errorf("ping %s -> %s: %w", a.Name, b.Name, err)
			}
		}
	}
	return nil
}
