package lab

import (
	"fmt"
	"os"
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
	if c.Runtime == RuntimeContainerd {
		return c.restartAgentContainer(i, sig)
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
	args := c.agentArgs(i)
	if c.Kubernetes {
		args = c.kubeAgentArgs(i)
	}
	_, err = c.spawn(proc, c.nodeNSPath(i), args...)
	return err
}

// restartAgentContainer signals the agent container of a real node (the DaemonSet's
// pod); the kubelet starts it again, as it would after a crash.
func (c Config) restartAgentContainer(i int, sig syscall.Signal) error {
	agents := func() []int {
		var out []int
		for _, pid := range c.nodeCgroupPIDs(i) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.HasPrefix(string(b), "/usr/local/bin/fjord\x00agent\x00") {
				out = append(out, pid)
			}
		}
		return out
	}
	old := agents()
	if len(old) == 0 {
		return fmt.Errorf("no fjord agent container runs on %s", c.NodeName(i))
	}
	for _, pid := range old {
		_ = syscall.Kill(pid, sig)
	}
	// The kubelet restarts the container (with a back-off; the first restart is at once).
	for t := 0; t < 600; t++ {
		if now := agents(); len(now) > 0 && now[0] != old[0] {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the kubelet did not restart the agent container on %s within 30s", c.NodeName(i))
}

func (c Config) hasProcess(name string) bool {
	for _, n := range c.labProcesses() {
		if n == name {
			return true
		}
	}
	return false
}
