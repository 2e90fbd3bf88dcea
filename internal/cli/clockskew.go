package cli

import (
	"context"
	"errors"
	"time"

	"github.com/fjord-net/fjord/internal/resolve"
)

// clockSkew measures node b's clock against node a's; it is replaced once the agents
// answer timestamp probes (see agent_latency.go).
var clockSkew func(ctx context.Context, a, b resolve.Node) (time.Duration, time.Duration, error) = func(context.Context, resolve.Node, resolve.Node) (time.Duration, time.Duration, error) {
	return 0, 0, errors.New("not measured")
}
