package lab

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RestartAgent stops node's agent (SIGKILL with kill, else SIGTERM) and starts it again
// with the same arguments. The data plane must not notice: that is what it demonstrates.
func RestartAgent(runRoot, name, node string, kill bool) error {
	c, err := Load(runRoot, name)
	if err != nil {
		return fmt.Errorf("lab %q is not up", name)
	}
	i, err := strconv.Atoi(strings.TrimPrefix(node, "n"))
	if err != nil || !strings.HasPrefix(node, "n") || i < 1 || i > c.Nodes {
		return fmt.Errorf("node %q is not in lab %q (n1..n%d)", node, name, c.Nodes)
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	proc := "agent-" + node
	for pid, n := range c.labProcesses() {
		if n == proc {
			_ = syscall.Kill(pid, sig)
		}
	}
	for t := 0; t < 200 && c.hasProcess(proc); t++ {
		time.Sleep(25 * time.Millisecond)
	}
	if c.hasProcess(proc) {
		return fmt.Errorf("agent of %s did not stop", node)
	}
	_, err = c.spawn(proc, c.nodeNSPath(i), c.agentArgs(i)...)
	return err
}

func (c Config) hasProcess(name string) bool {
	for _, n := range c.labProcesses() {
		if n == name {
			return true
		}
	}
	return false
}
