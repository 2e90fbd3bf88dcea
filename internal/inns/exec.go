package inns

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// execOutput runs a command on the calling (pinned) thread and returns its stdout;
// the error carries stderr.
func execOutput(name string, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
