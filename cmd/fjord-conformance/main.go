// Command fjord-conformance runs the upstream Kubernetes e2e suite (the e2e.test and
// ginkgo built from the same k8s.io/kubernetes release as the control plane) against
// a Kubernetes lab with real kubelets, where fjord is the only CNI and the only
// service proxy, and writes the result into docs/conformance.md. `make conformance`
// runs it; FOCUS= and SKIP= override the specs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/internal/conformance"
	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/lab"
)

func main() {
	var o options
	flag.StringVar(&o.fjord, "fjord", "bin/fjord", "the fjord binary (static: make build)")
	flag.StringVar(&o.focus, "focus", `\[sig-network\].*\[Conformance\]`, "ginkgo focus regexp")
	flag.StringVar(&o.skip, "skip", "", "ginkgo skip regexp")
	flag.StringVar(&o.section, "section", "Conformance", "section of the report this run fills")
	flag.IntVar(&o.procs, "procs", 4, "ginkgo processes")
	flag.IntVar(&o.nodes, "nodes", 3, "lab nodes")
	flag.IntVar(&o.zones, "zones", 0, "zones the lab's nodes are spread over, round-robin (0 = one per node)")
	flag.StringVar(&o.report, "report", "docs/conformance.md", "report to write the section into (\"\" = none)")
	flag.StringVar(&o.labName, "lab", "conf", "lab name")
	flag.StringVar(&o.subnet, "subnet", "198.18.166.0/24", "lab underlay subnet")
	flag.BoolVar(&o.keep, "keep", false, "leave the lab up afterwards")
	flag.DurationVar(&o.timeout, "timeout", 90*time.Minute, "ginkgo's timeout for the whole suite")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	passed, failed, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Printf("\n%s: %d passed, %d failed\n", o.section, passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

type options struct {
	fjord, focus, skip, section, report, labName, subnet string
	procs, nodes, zones                                  int
	keep                                                 bool
	timeout                                              time.Duration
}

func run(ctx context.Context, o options) (passed, failed int, err error) {
	fjord, err := filepath.Abs(o.fjord)
	if err != nil {
		return 0, 0, err
	}
	logf := func(f string, a ...any) { fmt.Printf("• "+f+"\n", a...) }
	bins, err := kubebuild.Ensure(ctx, kubebuild.Config{Logf: func(f string, a ...any) { fmt.Printf("  kubebuild: "+f+"\n", a...) }},
		kubebuild.E2ETest, kubebuild.Ginkgo, kubebuild.Kubectl)
	if err != nil {
		return 0, 0, err
	}
	sh := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	_ = exec.Command(fjord, "lab", "down", "--name", o.labName).Run()
	logf("lab %q with real kubelets; fjord installed from deploy/fjord.yaml (without its ingress), no kube-proxy", o.labName)
	// Without fjord's ingress: its host ports 80 and 443 on every node would shadow
	// the host-network servers the suite starts on those ports.
	if err := sh(fjord, "lab", "up", "--kubernetes", "--runtime", "containerd", "--name", o.labName, "--subnet", o.subnet, "--no-demo", "--no-ingress",
		"--nodes", strconv.Itoa(o.nodes), "--zones", strconv.Itoa(o.zones)); err != nil {
		return 0, 0, fmt.Errorf("lab up: %w", err)
	}
	if !o.keep {
		defer func() {
			logf("lab down")
			_ = exec.Command(fjord, "lab", "down", "--name", o.labName).Run()
		}()
	}
	c, err := lab.Load("/run/fjord", o.labName)
	if err != nil {
		return 0, 0, err
	}
	out, err := os.MkdirTemp("", "fjord-conformance-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(out)
	// The suite runs on the first node (where the API server is): it reaches the API,
	// every node and every pod there, as a test runner on a cluster node would.
	args := []string{"--net=/run/netns/" + c.NodeNS(1), "--", bins.Path(kubebuild.Ginkgo),
		fmt.Sprintf("--procs=%d", o.procs), "--focus=" + o.focus, "--no-color", "--timeout=" + o.timeout.String(),
		"--junit-report=junit.xml", "--output-dir=" + out}
	if o.skip != "" {
		args = append(args, "--skip="+o.skip)
	}
	// --num-nodes: with --provider=local the suite does not count the nodes itself and
	// skips every spec that needs two ("Requires at least 2 nodes (not -1)").
	args = append(args, bins.Path(kubebuild.E2ETest), "--", "--kubeconfig="+c.Kubeconfig("admin"), "--provider=local",
		fmt.Sprintf("--num-nodes=%d", c.Nodes),
		"--kubectl-path="+bins.Path(kubebuild.Kubectl), "--report-dir="+out)
	logf("ginkgo --procs=%d --focus=%q --skip=%q (progress follows; the 47 network conformance specs take minutes)", o.procs, o.focus, o.skip)
	started := time.Now()
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bins.Path(kubebuild.Kubectl))+":"+os.Getenv("PATH"))
	logFile, err := os.Create(filepath.Join(os.TempDir(), "fjord-conformance-"+o.labName+".log"))
	if err != nil {
		return 0, 0, err
	}
	defer logFile.Close()
	cmd.Stdout = io.MultiWriter(os.Stdout, logFile)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()
	wall := time.Since(started)
	// Kept for a closer look (the output directory goes away).
	if b, err := os.ReadFile(filepath.Join(out, "junit.xml")); err == nil {
		_ = os.WriteFile(filepath.Join(os.TempDir(), "fjord-conformance-"+o.labName+".junit.xml"), b, 0o644)
	}
	f, err := os.Open(filepath.Join(out, "junit.xml"))
	if err != nil {
		return 0, 0, errors.Join(fmt.Errorf("no JUnit report from ginkgo (log: %s)", logFile.Name()), runErr)
	}
	defer f.Close()
	specs, err := conformance.ParseJUnit(f)
	if err != nil {
		return 0, 0, err
	}
	r := conformance.Run{Section: o.section, Focus: o.focus, Skip: o.skip, Started: started, Wall: wall, Procs: o.procs,
		Machine: machine(), Commit: commit(), Kube: bins.Version, Specs: specs, Known: conformance.KnownCauses}
	if o.report != "" {
		doc, _ := os.ReadFile(o.report)
		if len(doc) == 0 {
			doc = []byte(conformance.Header)
		}
		if err := os.WriteFile(o.report, []byte(conformance.Splice(string(doc), o.section, r.Markdown())), 0o644); err != nil {
			return 0, 0, err
		}
		logf("wrote section %q of %s (ginkgo log: %s)", o.section, o.report, logFile.Name())
	}
	passed, failed = r.Counts()
	return passed, failed, nil
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d vCPU %s, %s", runtime.NumCPU(), model, runtime.GOOS+"/"+runtime.GOARCH)
}

// commit describes the fjord source the run was built from.
func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "(not a git checkout)"
	}
	return strings.TrimSpace(string(out))
}
