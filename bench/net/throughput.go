package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// ---------------------------------------------------------------------------------
// Throughput

type tpCase struct {
	Name     string // "raw", "vxlan", "routed"
	Streams  int
	ClientNS string
	Server   string // IP
	MTU      int
	Gbps     []float64
	Retr     []float64
}

func (c *tpCase) label() string { return fmt.Sprintf("%s -P %d", c.Name, c.Streams) }

type pod struct{ IP, Netns string }

func (b *bench) throughput(ctx context.Context, res *results) error {
	type pair struct{ client, server pod }
	pods := map[string]pair{}
	for _, l := range []lab{vxlanLab, routedLab} {
		c, s, err := b.iperfPods(ctx, l)
		if err != nil {
			return err
		}
		pods[l.Mode] = pair{c, s}
	}
	// Raw: iperf3 in the node namespaces themselves, over the underlay bridge.
	if err := b.startServer(vxlanLab.nodeNS(2)); err != nil {
		return err
	}
	rawMTU, err := ifaceMTU(vxlanLab.nodeNS(1), "eth0")
	if err != nil {
		return err
	}
	// Context only: TCP over loopback inside n1, the same-host ceiling with no veth.
	if err := b.startServer(vxlanLab.nodeNS(1)); err != nil {
		return err
	}
	loMTU, err := ifaceMTU(vxlanLab.nodeNS(1), "lo")
	if err != nil {
		return err
	}
	cases := []*tpCase{{Name: "loopback", Streams: 1, ClientNS: vxlanLab.nodeNS(1), Server: "127.0.0.1", MTU: loMTU}}
	for _, p := range []int{1, 8} {
		cases = append(cases, &tpCase{Name: "raw", Streams: p, ClientNS: vxlanLab.nodeNS(1), Server: vxlanLab.nodeAddr(2), MTU: rawMTU})
		for _, mode := range []string{"vxlan", "routed"} {
			pp := pods[mode]
			mtu, err := ifaceMTU(filepath.Base(pp.client.Netns), "eth0")
			if err != nil {
				return err
			}
			cases = append(cases, &tpCase{Name: mode, Streams: p, ClientNS: filepath.Base(pp.client.Netns), Server: pp.server.IP, MTU: mtu})
		}
	}
	if err := b.runRounds(ctx, cases); err != nil {
		return err
	}
	res.Throughput = cases
	return nil
}

// runRounds warms every case up, then runs the rounds: every case once per round.
func (b *bench) runRounds(ctx context.Context, cases []*tpCase) error {
	// Warm up every path (and wait for the servers) with a 1 s run each, discarded.
	for _, c := range cases {
		var err error
		for try := 0; try < 20; try++ {
			if _, _, err = iperf(ctx, c.ClientNS, c.Server, c.Streams, 1); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("warm-up %s: %w", c.label(), err)
		}
	}
	// Rounds: every case once per round. The starting case rotates and every other
	// round runs backwards, so no case always runs first, or always after the same one.
	for r := 0; r < *flagRounds; r++ {
		for k := range cases {
			if r%2 == 1 {
				k = len(cases) - 1 - k
			}
			c := cases[(k+r)%len(cases)]
			gbps, retr, err := iperf(ctx, c.ClientNS, c.Server, c.Streams, *flagSecs)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, c.label(), err)
			}
			c.Gbps, c.Retr = append(c.Gbps, gbps), append(c.Retr, float64(retr))
			b.logf("round %d/%d  %-12s %6.2f Gbit/s  %5d retransmits", r+1, *flagRounds, c.label(), gbps, retr)
		}
	}
	return nil
}

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: iperf-server
  labels: {app: bench-net}
spec:
  nodeName: n2
  containers:
  - name: iperf3
    image: iperf3
    command: ["iperf3", "-s"]
---
apiVersion: v1
kind: Pod
metadata:
  name: iperf-client
  labels: {app: bench-net}
spec:
  nodeName: n1
  containers:
  - name: idle
    image: fjord
`

func (b *bench) applyPods(ctx context.Context, l lab) error {
	f := filepath.Join(b.tmp, "pods.yaml")
	if err := os.WriteFile(f, []byte(podYAML), 0o644); err != nil {
		return err
	}
	_, err := benchkit.RunCmd(ctx, 30*time.Second, l.env(), b.fjord, "apply", "-f", f)
	return err
}

// iperfPods creates the iperf3 client pod (n1) and server pod (n2) in a lab and waits
// for both.
func (b *bench) iperfPods(ctx context.Context, l lab) (client, server pod, err error) {
	if err = b.applyPods(ctx, l); err != nil {
		return
	}
	if client, err = b.waitPod(ctx, l, "iperf-client"); err != nil {
		return
	}
	server, err = b.waitPod(ctx, l, "iperf-server")
	return
}

// waitPod polls until the pod runs with an address and a namespace (at most 60 s).
func (b *bench) waitPod(ctx context.Context, l lab, name string) (pod, error) {
	ip, ns, err := benchkit.WaitLabPod(ctx, b.fjord, l.env(), name)
	if err != nil {
		return pod{}, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	return pod{IP: ip, Netns: ns}, nil
}

// startServer runs `iperf3 -s` in a namespace until cleanup (or until this process
// dies: the kernel then kills it).
func (b *bench) startServer(ns string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "iperf3", "-s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("iperf3 server in %s: %w", ns, err)
	}
	b.servers = append(b.servers, cmd)
	return nil
}

func ifaceMTU(ns, dev string) (int, error) {
	out, err := benchkit.RunCmd(context.Background(), 10*time.Second, os.Environ(), "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+dev+"/mtu")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// iperf runs one client and returns the receiver's throughput and the retransmits.
func iperf(ctx context.Context, ns, server string, streams, secs int) (float64, int, error) {
	out, err := benchkit.RunCmd(ctx, time.Duration(secs+15)*time.Second, os.Environ(), "ip", "netns", "exec", ns,
		"iperf3", "-c", server, "-t", strconv.Itoa(secs), "-P", strconv.Itoa(streams), "-J", "--connect-timeout", "2000")
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &r); jerr == nil && r.Error != "" {
		return 0, 0, fmt.Errorf("iperf3 -c %s in %s: %s", server, ns, r.Error)
	}
	if err != nil {
		return 0, 0, err
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, 0, fmt.Errorf("iperf3 -c %s in %s: no throughput in its report", server, ns)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, r.End.SumSent.Retransmits, nil
}
