package benchkit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// WaitLabPod polls `fjord get pod NAME -o json` (fjord is the binary, env its
// environment) until the pod runs with an address and a network namespace, for at
// most 60 s, and returns those two.
func WaitLabPod(ctx context.Context, fjord string, env []string, name string) (ip, netns string, err error) {
	deadline := time.Now().Add(60 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) && ctx.Err() == nil {
		out, err := RunCmd(ctx, 10*time.Second, env, fjord, "get", "pod", name, "-o", "json")
		if err != nil {
			last = err.Error()
		} else {
			var p struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Status struct {
					Phase string `json:"phase"`
					PodIP string `json:"podIP"`
				} `json:"status"`
			}
			if err := json.Unmarshal(out, &p); err == nil {
				last = p.Status.Phase
				ns := p.Metadata.Annotations["fjord.dev/netns"]
				if p.Status.Phase == "Running" && p.Status.PodIP != "" && ns != "" {
					return p.Status.PodIP, ns, nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", "", fmt.Errorf("pod %s not running after 60 s (last: %s)", name, last)
}

// CPUModel is the first "model name" of /proc/cpuinfo ("" if none).
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// KernelRelease is /proc/sys/kernel/osrelease ("" if unreadable).
func KernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
