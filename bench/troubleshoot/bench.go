package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// bench is the run's state.
type bench struct {
	fjord string
	env   []string
	up    bool
}

func (b *bench) fj(ctx context.Context, limit time.Duration, args ...string) ([]byte, error) {
	return benchkit.RunCmd(ctx, limit, b.env, b.fjord, args...)
}

func (b *bench) down() {
	if b.up {
		_, _ = benchkit.RunCmd(context.Background(), time.Minute, b.env, b.fjord, "lab", "down", "--name", labName)
	}
}

// timed runs f and returns its wall time in seconds.
func timed(f func() error) (float64, error) {
	start := time.Now()
	err := f()
	return time.Since(start).Seconds(), err
}

func (b *bench) do(ctx context.Context, res *results) error {
	_, _ = b.fj(ctx, time.Minute, "lab", "down", "--name", labName)
	if _, err := b.fj(ctx, 3*time.Minute, "lab", "up", "--name", labName, "--subnet", labSubnet); err != nil {
		return err
	}
	b.up = true
	eps, err := b.endpoints(ctx)
	if err != nil {
		return err
	}
	// Warm-up: neighbour entries, the agents' first probes.
	if _, err := b.fj(ctx, time.Minute, "mtu"); err != nil {
		return fmt.Errorf("warm-up mtu: %w", err)
	}
	for _, sc := range []struct {
		name  string
		fault []string
	}{{"healthy", nil}, {"black hole (underlay-mtu n3 1400)", []string{"underlay-mtu", "n3", "1400"}}} {
		if sc.fault != nil {
			if _, err := b.fj(ctx, time.Minute, append([]string{"lab", "fault", "--name", labName}, sc.fault...)...); err != nil {
				return err
			}
		}
		row := comparison{Case: "mtu matrix, " + sc.name}
		for r := 0; r < *flagRounds; r++ {
			t, _ := timed(func() error { _, err := b.fj(ctx, 2*time.Minute, "mtu"); return ignoreExit1(err) })
			row.Fjord = append(row.Fjord, t)
			t, err := timed(func() error { return pingSearchMatrix(ctx, eps) })
			if err != nil {
				return err
			}
			row.Peer = append(row.Peer, t)
		}
		res.MTU = append(res.MTU, row)
		if sc.fault != nil {
			if _, err := b.fj(ctx, time.Minute, "lab", "fault", "--name", labName, "clear"); err != nil {
				return err
			}
		}
	}
	row := comparison{Case: "latency matrix, 20 probes a pair"}
	for r := 0; r < *flagRounds; r++ {
		t, err := timed(func() error { _, err := b.fj(ctx, 2*time.Minute, "latency", "--count", "20"); return err })
		if err != nil {
			return err
		}
		row.Fjord = append(row.Fjord, t)
		t, err = timed(func() error { return pingMatrix(ctx, eps, 20) })
		if err != nil {
			return err
		}
		row.Peer = append(row.Peer, t)
	}
	res.Latency = row
	var perr error
	res.Probes, perr = proberCPU(ctx, []int{2, 99}, *flagWindow)
	if perr != nil {
		return perr
	}
	res.Agents, err = agentCPU(ctx, labName, *flagWindow)
	return err
}

// ignoreExit1: fjord mtu exits 1 when it finds a black hole, which is the point here.
func ignoreExit1(err error) error {
	if err != nil && strings.Contains(err.Error(), "exit status 1") {
		return nil
	}
	return err
}

// endpoint is a node or pod namespace and its address.
type endpoint struct {
	Layer, Name, Netns, Addr, Node string
}

// endpoints lists the lab's nodes and one pod per node.
func (b *bench) endpoints(ctx context.Context) ([]endpoint, error) {
	var out []endpoint
	for i := 1; i <= 3; i++ {
		out = append(out, endpoint{Layer: "underlay", Name: fmt.Sprintf("n%d", i), Node: fmt.Sprintf("n%d", i),
			Netns: fmt.Sprintf("fjord-%s-n%d", labName, i), Addr: fmt.Sprintf("198.18.173.%d", 10+i)})
	}
	raw, err := b.fj(ctx, time.Minute, "get", "pods", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
			Status struct {
				PodIP string `json:"podIP"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	for _, p := range list.Items {
		if strings.HasPrefix(p.Metadata.Name, "echo-") && p.Status.PodIP != "" {
			out = append(out, endpoint{Layer: "overlay", Name: p.Metadata.Name, Node: p.Spec.NodeName,
				Netns: fmt.Sprintf("fjord-%s-pod-default-%s", labName, p.Metadata.Name), Addr: p.Status.PodIP})
		}
	}
	if len(out) != 6 {
		return nil, fmt.Errorf("want 3 nodes and 3 echo pods, have %d endpoints", len(out))
	}
	if _, err := os.Stat("/run/netns/" + out[3].Netns); err != nil {
		return nil, err
	}
	return out, nil
}
