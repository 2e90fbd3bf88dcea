package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Down removes everything lab `name` created: its processes (found by their marker even
// if the state directory is lost), namespaces, the host link and the state directory.
// It is safe to run on a lab that is half up, crashed, or already down.
func Down(runRoot, name string, out io.Writer) error {
	c, err := Load(runRoot, name)
	if err != nil {
		// No saved config (crashed early or already gone): names derive from the name.
		c = Config{Name: name, RunRoot: runRoot}
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("--name: %q is not a lab name", name)
	}
	if cleared, err := c.clearFaults("", ""); len(cleared) > 0 || err != nil {
		fmt.Fprintf(out, "• cleared %d faults (%v)\n", len(cleared), err)
	}
	n := c.stopProcesses()
	fmt.Fprintf(out, "• stopped %d processes\n", n)
	var errs []error
	if _, err := os.Stat(c.DiskRoot()); err == nil {
		if err := c.removeNodeHosts(); err != nil {
			errs = append(errs, err)
		}
		fmt.Fprintf(out, "• removed the nodes' containers, cgroups, mount namespaces and %s\n", c.DiskRoot())
	}
	nss := c.labNamespaces()
	if err := c.removeTopology(); err != nil {
		errs = append(errs, err)
	}
	fmt.Fprintf(out, "• removed %d network namespaces and link %s\n", len(nss), c.HostLink())
	c.removeRouterLeftovers()
	if err := os.RemoveAll(c.StateDir()); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(filepath.Dir(c.StateDir())) // the run root, if now empty
	fmt.Fprintf(out, "• removed %s\n", c.StateDir())
	if left := c.labNamespaces(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("namespaces still present: %v", left))
	}
	return errors.Join(errs...)
}
