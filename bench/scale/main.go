// Command bench-scale measures one fjord agent in Kubernetes mode against a real
// kube-apiserver (on fjord's embedded etcd) that holds a large cluster: 1,000 Nodes
// whose kube-node-lease Leases a load generator renews every 10 s and whose status it
// posts as kubelets do, and 30,000 Services with an EndpointSlice of 3 endpoints
// each. It reports the agent's memory (RSS and Go heap, and what one Node and one
// Service cost), its CPU and the watch traffic it receives while only heartbeats
// change, and the time one EndpointSlice change takes to reach its kernel; then it
// rewrites the measured section of docs/scale.md. The projection to larger clusters
// in that document is written by hand from these numbers.
//
// Network namespaces it creates (and removes on exit, failure or signal):
//
//	fjord-bsc-api   kube-apiserver on 198.18.181.1:6443
//	fjord-bsc-node  the agent (eth0 198.18.181.2): its pod network and nftables are here
//	fjord-bsc-a/-b  two echo backends, 10.128.0.10 and .11, pods of the agent's node
//	                that the measured EndpointSlice changes point at
//
// The 1,000 other Nodes are objects only: no process runs for them. It must run as
// root; traffic stays inside these namespaces; every wait is bounded.
//
//	make build && go run ./bench/scale -fjord bin/fjord
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/kubecp"
)

var (
	flagFjord      = flag.String("fjord", "bin/fjord", "the fjord binary")
	flagNodes      = flag.Int("nodes", 1000, "Nodes besides the agent's own")
	flagServices   = flag.Int("services", 30000, "Services, each with one EndpointSlice")
	flagEndpoints  = flag.Int("endpoints", 3, "endpoints per EndpointSlice")
	flagLease      = flag.Duration("lease-every", 10*time.Second, "how often each Node's Lease is renewed (the kubelet's default)")
	flagStatus     = flag.Duration("status-every", 10*time.Second, "how often each Node's status is posted in the second phase (kubelets before 1.17, or nodeStatusReportFrequency=10s)")
	flagReport     = flag.Duration("report-every", 5*time.Minute, "how often each Node's status is posted in the first phase (the kubelet's default nodeStatusReportFrequency)")
	flagWindow     = flag.Duration("window", 60*time.Second, "measuring window of each phase")
	flagWarmup     = flag.Duration("warmup", 15*time.Second, "load before each window starts")
	flagChanges    = flag.Int("changes", 10, "EndpointSlice changes timed per phase")
	flagCreate     = flag.Int("create-workers", 16, "concurrent creates while filling the API server")
	flagDoc        = flag.String("doc", "docs/scale.md", "document whose measured section is rewritten (\"\" = none)")
	flagKubeCache  = flag.String("kube-cache", "", "the Kubernetes build cache (default $"+kubebuild.CacheEnv+", else ~/.cache/fjord)")
	flagTimeout    = flag.Duration("timeout", 30*time.Minute, "hard limit for the whole run")
	flagKeepLogs   = flag.String("logs", "", "copy the agent's and kube-apiserver's logs here before cleaning up")
	flagChangeWait = flag.Duration("change-timeout", 60*time.Second, "longest wait for one change to reach the kernel")
	flagSteady     = flag.Duration("steady", 10*time.Minute+30*time.Second, "no window starts before the agent has run this long: its informers' first watches are streaming lists, which kube-apiserver gzips, and they last 5 to 10 minutes")
)

// Addresses and names; 198.18.181.0/24 and 198.18.184.0/22 are used by nothing else.
const (
	nsPrefix    = "fjord-bsc"
	nsAPI       = nsPrefix + "-api"
	nsNode      = nsPrefix + "-node"
	agentNode   = "scale-agent"
	namespace   = "scale"
	apiPort     = 6443
	debugAddr   = "127.0.0.1:6060"
	backendPort = 8080
)

var (
	apiAddr     = netip.MustParseAddr("198.18.181.1")
	nodeAddr    = netip.MustParseAddr("198.18.181.2")
	clusterCIDR = netip.MustParsePrefix("10.128.0.0/9")
	serviceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	agentCIDR   = netip.MustParsePrefix("10.128.0.0/24")
	gateway     = netip.MustParseAddr("10.128.0.1")
	backends    = map[string]netip.Addr{"a": netip.MustParseAddr("10.128.0.10"), "b": netip.MustParseAddr("10.128.0.11")}
)

// Users of the run's API server. The agent is in system:masters too: its permissions
// change nothing it measures (the integration tests check its least-privilege role).
const (
	admin     = "bench:admin"
	agentUser = "fjord:agent"
)

func main() {
	flag.Parse()
	ctx, stop, fjord, err := benchkit.Start(*flagFjord, *flagTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	b := &bench{log: os.Stderr, start: time.Now(), fjord: fjord}
	err = b.run(ctx)
	stop()
	b.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

// bench holds the run's state, so cleanup knows what to undo.
type bench struct {
	log   io.Writer
	start time.Time
	tmp   string
	fjord string

	mu         sync.Mutex
	procs      []*benchkit.Proc
	namespaces []string
	cp         *kubecp.ControlPlane
	workers    []*benchkit.NSWorker

	admin      kubernetes.Interface
	agent      *benchkit.Proc
	agentStart time.Time
	api        *benchkit.NSWorker // dials into fjord-bsc-api
	node       *benchkit.NSWorker // dials inside fjord-bsc-node
	res        results
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) error {
	for _, tool := range []string{"ip", "nft", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (make deps)", tool)
		}
	}
	var err error
	if b.tmp, err = os.MkdirTemp("", "fjord-bsc-"); err != nil {
		return err
	}
	b.logf("Kubernetes binaries (a cold build takes minutes: docs/kubernetes-build.md)")
	bins, err := kubebuild.Ensure(ctx, kubebuild.Config{CacheDir: *flagKubeCache,
		Logf: func(f string, a ...any) { b.logf("kubebuild: "+f, a...) }}, kubebuild.KubeAPIServer)
	if err != nil {
		return err
	}
	b.res.Machine = machine()
	b.res.LoadBefore = benchkit.LoadAvg()
	b.res.Steady = flagSteady.String()
	b.res.Nodes, b.res.Services, b.res.Endpoints = *flagNodes, *flagServices, *flagEndpoints

	if err := b.topology(ctx); err != nil {
		return fmt.Errorf("namespaces: %w", err)
	}
	if err := b.controlPlane(ctx, bins); err != nil {
		return err
	}
	if err := b.fill(ctx); err != nil {
		return err
	}
	if wait := time.Until(b.agentStart.Add(*flagSteady)); wait > 0 {
		b.logf("waiting %s, until the agent's first (gzip'd) watch streams have ended", wait.Round(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, ph := range []phase{
		{Name: "status every " + short(*flagReport), Lease: *flagLease, Status: *flagReport},
		{Name: "status every " + short(*flagStatus), Lease: *flagLease, Status: *flagStatus},
	} {
		if err := b.measurePhase(ctx, &ph); err != nil {
			return fmt.Errorf("phase %q: %w", ph.Name, err)
		}
		b.res.Phases = append(b.res.Phases, ph)
	}
	b.res.Duration = time.Since(b.start)
	report := b.res.markdown()
	fmt.Println(report)
	if *flagDoc != "" {
		if err := benchkit.WriteSection(*flagDoc, "Measured", "bench-scale", report); err != nil {
			return err
		}
		b.logf("wrote %s", *flagDoc)
	}
	return nil
}

// short is "10s", "5m".
func short(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "m") || strings.HasSuffix(s, "h") {
		return s
	}
	return d.String()
}

// cleanup undoes everything run did, whatever state it got to.
func (b *bench) cleanup() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if *flagKeepLogs != "" && b.tmp != "" {
		_ = os.MkdirAll(*flagKeepLogs, 0o755)
		for _, name := range []string{"agent.log", kubecp.APIServerLog} {
			for _, dir := range []string{b.tmp, filepath.Join(b.tmp, "cp")} {
				if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					_ = os.WriteFile(filepath.Join(*flagKeepLogs, name), data, 0o644)
				}
			}
		}
	}
	for _, p := range b.procs {
		p.Stop(0)
	}
	if b.cp != nil {
		b.cp.Close()
	}
	for _, w := range b.workers {
		w.Close()
	}
	for _, ns := range b.namespaces {
		_, _ = benchkit.RunCmd(context.Background(), 30*time.Second, os.Environ(), "ip", "netns", "delete", ns)
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

// spawn starts name in network namespace ns, logging to tmp/name.log.
func (b *bench) spawn(name, ns string, args ...string) (*benchkit.Proc, error) {
	p, err := benchkit.StartProc(name, filepath.Join(b.tmp, name+".log"), nil, append([]string{"ip", "netns", "exec", ns}, args...)...)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// poll runs cond every interval until it holds, ctx ends or limit passes.
func poll(ctx context.Context, limit, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s (last error: %v)", what, limit, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}
