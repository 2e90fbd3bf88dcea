package trace

import (
	"os"
	"os/exec"
	"strings"

	"github.com/fjord-net/fjord/internal/inns"
)

func nsFile(path string) (*os.File, error) { return os.Open(path) }

// runIn runs a command (one argument string for nft) inside a namespace.
func runIn(ns, name, arg string) (string, error) {
	var out []byte
	err := inns.Do(ns, func() error {
		var err error
		out, err = exec.Command(name, strings.Fields(strings.ReplaceAll(arg, ";", " ; "))...).CombinedOutput()
		return err
	})
	return string(out), err
}
