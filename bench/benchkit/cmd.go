package benchkit

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// RunCmd runs a command with a time limit and returns its stdout; errors carry the
// command line and (the first 2,000 bytes of) stderr.
func RunCmd(ctx context.Context, limit time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return []byte(stdout.String()), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return []byte(stdout.String()), nil
}
