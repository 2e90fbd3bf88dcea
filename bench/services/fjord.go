package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// fjordSide is a one-node fjord lab: the node namespace runs `fjord agent` (whose
// service proxy is measured), a client pod and the echo pods all on n1.
type fjordSide struct {
	b        *bench
	name     string // lab name
	subnet   string
	cli      *clientv3.Client
	st       *store.Store
	client   pod
	echo     map[string]pod // a, b, c, d
	worker   *nsWorker
	labIsUp  bool
	tooLarge string // the store refused a transaction as too large
	maxBatch int    // largest transaction written
}

type pod struct{ Name, IP, Netns string }

const runRoot = "/run/fjord"

func (f *fjordSide) prefix() string   { return "fjord-" + f.name }
func (f *fjordSide) nodeNS() string   { return f.prefix() + "-n1" }
func (f *fjordSide) stateDir() string { return filepath.Join(runRoot, f.name) }
func (f *fjordSide) socket() string   { return "unix://" + f.stateDir() + "/etcd.sock" }
func (f *fjordSide) env() []string {
	return append(os.Environ(), "FJORD_ETCD_ENDPOINTS="+f.socket())
}

func (f *fjordSide) present() bool {
	if fileExists(f.stateDir()) {
		return true
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), f.prefix()+"-") {
			return true
		}
	}
	return false
}

func (f *fjordSide) up(ctx context.Context) error {
	b := f.b
	if f.present() {
		b.logf("removing leftover lab %s", f.name)
		f.down()
	}
	args := []string{"lab", "up", "--name", f.name, "--subnet", f.subnet, "--nodes", "1", "--no-demo", "--mode", "routed"}
	if *flagProxyConfig != "" {
		args = append(args, "--proxy-config", *flagProxyConfig)
	}
	b.logf("fjord: lab up %s (1 node, routed, %s)", f.name, f.subnet)
	f.labIsUp = true // a half-up lab is taken down too
	if _, err := benchkit.RunCmd(ctx, 90*time.Second, os.Environ(), b.fjord, args...); err != nil {
		return err
	}
	var y strings.Builder
	for _, n := range append([]string{"client"}, echoNames...) {
		// The client pod's own process is idle (the lab's default, `fjord echo`): the
		// benchmark connects from its namespace. The backends run this program's server.
		command := ""
		if n != "client" {
			command = fmt.Sprintf(", command: [%q, \"-serve\", \":%d\"]", b.self, backendPort)
		}
		fmt.Fprintf(&y, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: default, labels: {app: bench-services}}\n"+
			"spec:\n  nodeName: n1\n  containers: [{name: backend, image: bench%s}]\n", podName(n), command)
	}
	file := filepath.Join(b.tmp, "fjord-pods.yaml")
	if err := os.WriteFile(file, []byte(y.String()), 0o644); err != nil {
		return err
	}
	if _, err := benchkit.RunCmd(ctx, 30*time.Second, f.env(), b.fjord, "apply", "-f", file); err != nil {
		return err
	}
	var err error
	if f.client, err = f.waitPod(ctx, podName("client")); err != nil {
		return err
	}
	f.echo = map[string]pod{}
	for _, n := range echoNames {
		if f.echo[n], err = f.waitPod(ctx, podName(n)); err != nil {
			return err
		}
	}
	if f.worker, err = newNSWorker(filepath.Base(f.client.Netns)); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if f.cli, err = store.Connect(cctx, store.ClientConfig{Endpoints: []string{f.socket()}}); err != nil {
		return err
	}
	f.st = store.New(f.cli, "")
	return nil
}

func podName(n string) string {
	if n == "client" {
		return "client"
	}
	return "echo-" + n
}

// waitPod polls until the pod runs with an address and a namespace (at most 60 s).
func (f *fjordSide) waitPod(ctx context.Context, name string) (pod, error) {
	ip, ns, err := benchkit.WaitLabPod(ctx, f.b.fjord, f.env(), name)
	if err != nil {
		return pod{}, fmt.Errorf("lab %s: %w", f.name, err)
	}
	return pod{Name: name, IP: ip, Netns: ns}, nil
}

func (f *fjordSide) down() {
	if f.worker != nil {
		f.worker.Close()
		f.worker = nil
	}
	if f.cli != nil {
		_ = f.cli.Close()
		f.cli = nil
	}
	out, err := benchkit.RunCmd(context.Background(), 60*time.Second, os.Environ(), f.b.fjord, "lab", "down", "--name", f.name)
	if err != nil {
		f.b.logf("WARNING: lab down %s: %v\n%s", f.name, err, out)
	}
	f.labIsUp = false
}

// apply writes the documents in transactions of at most 5,000 objects (the embedded
// etcd allows 10,000 operations per transaction). The documents go through the same
// decoding, defaulting and validation as `fjord apply`. A transaction the store
// refuses as too large is split in two and retried; the first such refusal is kept
// for the report.
func (f *fjordSide) apply(ctx context.Context, docs [][]byte) error {
	const batch = 5000
	for len(docs) > 0 {
		n := min(batch, len(docs))
		if err := f.applyOne(ctx, docs[:n]); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

func (f *fjordSide) applyOne(ctx context.Context, docs [][]byte) error {
	var buf bytes.Buffer
	for _, d := range docs {
		buf.Write(d)
		buf.WriteByte('\n')
	}
	size := buf.Len()
	objs, err := objects.Decode(&buf, "bench")
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := objects.Validate(o); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = f.st.Apply(actx, objs)
	cancel()
	if err != nil && len(docs) > 1 && (strings.Contains(err.Error(), "ResourceExhausted") || strings.Contains(err.Error(), "too large")) {
		if f.tooLarge == "" {
			f.tooLarge = fmt.Sprintf("one transaction of %d objects (%.1f MB of manifests) was refused: %v", len(objs), float64(size)/1e6, err)
			f.b.logf("fjord: %s; splitting", f.tooLarge)
		}
		h := len(docs) / 2
		if err := f.applyOne(ctx, docs[:h]); err != nil {
			return err
		}
		return f.applyOne(ctx, docs[h:])
	}
	if err != nil {
		return fmt.Errorf("fjord apply of %d objects: %w", len(objs), err)
	}
	f.maxBatch = max(f.maxBatch, len(objs))
	return nil
}

// agentPID finds the lab's agent on n1 through the marker the lab sets (0: none).
func (f *fjordSide) agentPID() int {
	pid := 0
	forEachProc(func(p int, env []string) {
		var lab, proc bool
		for _, v := range env {
			lab = lab || v == "FJORD_LAB="+f.name
			proc = proc || v == "FJORD_LAB_PROC=agent-n1"
		}
		// Its children (nft) inherit the markers: the agent is the one running `fjord agent`.
		if lab && proc {
			if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); err == nil {
				if args := strings.Split(string(cmd), "\x00"); len(args) > 1 && args[1] == "agent" {
					pid = p
				}
			}
		}
	})
	return pid
}

// stopAgent stops n1's agent (SIGTERM, then SIGKILL after 15 s). The lab started it;
// this benchmark stops it by its process id while objects are written, so that a
// cold start measures programming from scratch.
func (f *fjordSide) stopAgent() error {
	pid := f.agentPID()
	if pid == 0 {
		return nil
	}
	return stopPID(pid, 15*time.Second)
}

// flush deletes the service proxy's table in the node namespace.
func (f *fjordSide) flush(ctx context.Context) error {
	out, err := benchkit.RunCmd(ctx, 60*time.Second, os.Environ(), "ip", "netns", "exec", f.nodeNS(), "nft", "list", "tables")
	if err != nil {
		return err
	}
	if strings.Contains(string(out), "table ip fjord") {
		_, err = benchkit.RunCmd(ctx, 60*time.Second, os.Environ(), "ip", "netns", "exec", f.nodeNS(), "nft", "delete", "table", "ip", "fjord")
	}
	return err
}

// startAgent starts n1's agent again through the lab (`fjord lab restart-agent`).
func (f *fjordSide) startAgent(ctx context.Context) (int, error) {
	if _, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), f.b.fjord, "lab", "restart-agent", "n1", "--name", f.name); err != nil {
		return 0, err
	}
	for i := 0; i < 100; i++ {
		if pid := f.agentPID(); pid != 0 {
			return pid, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("agent of n1 not found after restart-agent")
}

func (f *fjordSide) agentLog() string { return filepath.Join(f.stateDir(), "logs", "agent-n1.log") }

// stopPID sends SIGTERM and waits for the process to go, then SIGKILL.
func stopPID(pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !pidAlive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 250 && pidAlive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if pidAlive(pid) {
		return fmt.Errorf("process %d did not exit after SIGKILL", pid)
	}
	return nil
}

// pidAlive: the process exists and is not a zombie.
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func forEachProc(fn func(pid int, env []string)) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || len(env) == 0 {
			continue
		}
		fn(pid, strings.Split(string(env), "\x00"))
	}
}

func addrs(ps ...pod) []netip.Addr {
	var out []netip.Addr
	for _, p := range ps {
		out = append(out, netip.MustParseAddr(p.IP))
	}
	return out
}
