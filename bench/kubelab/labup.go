package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fjord-net/fjord/internal/lab"
)

// ---------------------------------------------------------------------------------
// `lab up` timings

// upRun is one timed `fjord lab up`.
type upRun struct {
	Label string
	Fresh bool          // with an empty Kubernetes cache
	Wall  time.Duration // the whole command
	UpIn  time.Duration // what the lab itself reports ("is up in"): from the first step
	Steps []upStep
	// Events are the watcher's observations, since the command started.
	Events map[string]time.Duration
	// Imports are how long each image's `ctr images import` took on each node, as
	// the watcher saw them (one after the other, until the kubelet started).
	Imports map[string][]time.Duration
	// ImportOrder is the images in the order the lab imports them; ImportSizes their
	// tarballs' sizes in bytes.
	ImportOrder []string
	ImportSizes map[string]int64
	Down        time.Duration
	// Kubebuild are the builder's "built ..." lines (the fresh run).
	Kubebuild []string
}

// upStep is one "• step ... ok (d)" line; End is when the line arrived, since the
// command started.
type upStep struct {
	Name     string
	Dur, End time.Duration
}

// The real-node step, observed from outside: the first time each holds on every node.
const (
	evContainerd = "containerd started"
	evKubelets   = "images imported, kubelet started"
	evRegistered = "Node registered"
	evNodeReady  = "Node Ready (the runtime has a CNI config)"
	evAgents     = "fjord agent pod Ready"
	evDNS        = "a CoreDNS pod Ready"
)

var eventOrder = []string{evContainerd, evKubelets, evRegistered, evNodeReady, evAgents, evDNS}

func (b *bench) labConfig() lab.Config {
	c := lab.Default()
	c.Name, c.RunRoot = *flagName, "/run/fjord"
	return c
}

// upTimings times `lab up` (the demo included, as a user runs it): once with an
// empty Kubernetes cache, then -up-runs times warm, each followed by a timed `lab down`.
func (b *bench) upTimings(ctx context.Context, res *results) error {
	if _, err := b.labDown(); err != nil {
		return err
	}
	if *flagFresh {
		dir, err := os.MkdirTemp("/var/tmp", "fjord-kbench-cache-")
		if err != nil {
			return err
		}
		b.freshDir = dir
		r, err := b.timeUp(ctx, "fresh Kubernetes cache", []string{"FJORD_KUBE_CACHE=" + dir})
		if err != nil {
			return err
		}
		r.Fresh = true
		res.Up = append(res.Up, r)
		_ = os.RemoveAll(dir)
		b.freshDir = ""
	}
	for i := 1; i <= *flagUpRuns; i++ {
		r, err := b.timeUp(ctx, fmt.Sprintf("warm %d", i), nil)
		if err != nil {
			return err
		}
		res.Up = append(res.Up, r)
	}
	return nil
}

// timeUp runs `fjord lab up --kubernetes --runtime containerd` with a watcher beside
// it, then `lab down`.
func (b *bench) timeUp(ctx context.Context, label string, env []string) (*upRun, error) {
	b.logf("lab up %s (%s)", *flagName, label)
	r := &upRun{Label: label}
	args := []string{"lab", "up", "--kubernetes", "--runtime", "containerd", "--name", *flagName, "--subnet", *flagSubnet}
	out, wall, w, err := b.runUp(ctx, env, args)
	if err != nil {
		return nil, err
	}
	r.Wall, r.Events = wall, w.events()
	r.Imports, r.ImportOrder = w.importTimes()
	r.ImportSizes = w.sizes
	for _, st := range parseSteps(out) {
		r.Steps = append(r.Steps, st)
	}
	for _, l := range out {
		line := l.text
		if s, ok := strings.CutPrefix(line, "lab \""+*flagName+"\" is up in "); ok {
			r.UpIn, _ = time.ParseDuration(strings.TrimSuffix(s, "."))
		}
		s := strings.TrimSpace(okSuffix.ReplaceAllString(line, ""))
		if strings.HasPrefix(s, "kubebuild: built") || (strings.HasPrefix(s, "kubebuild:") && strings.Contains(s, "ready in")) {
			r.Kubebuild = append(r.Kubebuild, strings.TrimPrefix(s, "kubebuild: "))
		}
	}
	if len(r.Steps) == 0 || r.UpIn == 0 {
		return nil, fmt.Errorf("lab up printed no steps or no total; its output:\n%s", joinLines(out))
	}
	if r.Down, err = b.labDown(); err != nil {
		return nil, err
	}
	b.labUp = false
	b.logf("  up in %s (wall %s), down in %s", r.UpIn, r.Wall.Round(100*time.Millisecond), r.Down.Round(100*time.Millisecond))
	return r, nil
}

type outLine struct {
	at   time.Duration
	text string
}

func joinLines(ls []outLine) string {
	var s strings.Builder
	for _, l := range ls {
		s.WriteString(l.text + "\n")
	}
	return s.String()
}

// runUp runs `fjord lab up ARGS` and returns its output lines, each with the time it
// arrived, the wall time, and what the watcher saw.
func (b *bench) runUp(ctx context.Context, env []string, args []string) ([]outLine, time.Duration, *watcher, error) {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Minute) // a fresh cache links Kubernetes
	defer cancel()
	cmd := exec.CommandContext(ctx, b.fjord, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	b.labUp = true // recorded first: a half-up lab is taken down too
	if err := cmd.Start(); err != nil {
		return nil, 0, nil, err
	}
	w := newWatcher(b.labConfig(), start)
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.run(wctx) }()
	var lines []outLine
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines = append(lines, outLine{time.Since(start), sc.Text()})
			fmt.Fprintf(b.log, "    | %s\n", sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	pw.Close()
	stopWatch()
	wg.Wait()
	if err != nil {
		return lines, wall, nil, fmt.Errorf("fjord %s: %w\n%s", strings.Join(args, " "), err, joinLines(lines))
	}
	return lines, wall, w, nil
}

var okSuffix = regexp.MustCompile(`ok \(([0-9.hmµns]+)\)$`)

// parseSteps reads the lab's "• NAME ... ok (DURATION)" lines. A step that logs
// (the image builds of a fresh cache) prints its lines between the two halves:
// "• NAME ... ", then its lines, the last one ending in "ok (DURATION)".
func parseSteps(out []outLine) []upStep {
	var steps []upStep
	pending := ""
	for _, l := range out {
		if rest, ok := strings.CutPrefix(l.text, "• "); ok {
			pending = ""
			if i := strings.LastIndex(rest, " ... "); i >= 0 {
				pending = rest[:i]
			}
		}
		if m := okSuffix.FindStringSubmatch(l.text); m != nil && pending != "" {
			if d, err := time.ParseDuration(m[1]); err == nil {
				steps = append(steps, upStep{Name: pending, Dur: d, End: l.at})
			}
			pending = ""
		}
	}
	return steps
}

// watcher notes when each stage of the real nodes' start holds on every node, from
// the processes the lab starts and from the API.
type watcher struct {
	c      lab.Config
	start  time.Time
	mu     sync.Mutex
	ev     map[string]time.Duration
	client kubernetes.Interface
	// imports[i][image] is when node i's import of image was first seen; kubelet[i]
	// when its kubelet was.
	imports map[int]map[string]time.Duration
	kubelet map[int]time.Duration
	order   []string
	sizes   map[string]int64
}

func newWatcher(c lab.Config, start time.Time) *watcher {
	return &watcher{c: c, start: start, ev: map[string]time.Duration{}, imports: map[int]map[string]time.Duration{}, kubelet: map[int]time.Duration{}, sizes: map[string]int64{}}
}

// importTimes turns first sightings into durations: an import lasts until the node's
// next import (or its kubelet) started. Imports shorter than the polling interval may
// not be seen; their time is then counted in the one before.
func (w *watcher) importTimes() (map[string][]time.Duration, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]time.Duration{}
	for i, seen := range w.imports {
		end, ok := w.kubelet[i]
		if !ok {
			continue
		}
		var names []string
		for name := range seen {
			names = append(names, name)
		}
		slices.SortFunc(names, func(a, b string) int { return cmp.Compare(seen[a], seen[b]) })
		for k, name := range names {
			next := end
			if k+1 < len(names) {
				next = seen[names[k+1]]
			}
			out[name] = append(out[name], next-seen[name])
		}
	}
	return out, slices.Clone(w.order)
}

func (w *watcher) events() map[string]time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]time.Duration{}
	for k, v := range w.ev {
		out[k] = v
	}
	return out
}

func (w *watcher) mark(name string, ok bool) {
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.ev[name]; !seen {
		w.ev[name] = time.Since(w.start)
	}
}

func (w *watcher) seen(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.ev[name]
	return ok
}

func (w *watcher) run(ctx context.Context) {
	n := w.c.Nodes
	for ctx.Err() == nil && len(w.events()) < len(eventOrder) {
		if !w.seen(evKubelets) {
			w.checkProcesses(n)
		}
		if w.client == nil {
			if _, err := os.Stat(w.c.Kubeconfig("admin")); err == nil {
				w.client, _ = w.c.AdminClient()
			}
		}
		if w.client != nil && w.seen(evContainerd) {
			w.checkAPI(ctx, n)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkProcesses looks for each node's containerd, image imports and kubelet.
func (w *watcher) checkProcesses(n int) {
	containerds := 0
	now := time.Since(w.start)
	w.mu.Lock()
	for _, cmdline := range cmdlines() {
		for i := 1; i <= n; i++ {
			dir := w.c.DiskDir(i) + "/"
			switch {
			case strings.Contains(cmdline, dir+"containerd.toml"):
				containerds++
			case strings.Contains(cmdline, "--config="+dir+"kubelet.yaml"):
				if _, ok := w.kubelet[i]; !ok {
					w.kubelet[i] = now
				}
			case strings.Contains(cmdline, " images import ") && strings.Contains(cmdline, dir):
				f := strings.Fields(cmdline)
				name := filepath.Base(f[len(f)-1])
				if w.imports[i] == nil {
					w.imports[i] = map[string]time.Duration{}
				}
				if _, ok := w.imports[i][name]; !ok {
					w.imports[i][name] = now
				}
				if !slices.Contains(w.order, name) {
					w.order = append(w.order, name)
					if fi, err := os.Stat(f[len(f)-1]); err == nil {
						w.sizes[name] = fi.Size()
					}
				}
			}
		}
	}
	kubelets := len(w.kubelet)
	w.mu.Unlock()
	w.mark(evContainerd, containerds >= n)
	w.mark(evKubelets, kubelets >= n)
}

func (w *watcher) checkAPI(ctx context.Context, n int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if nodes, err := w.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		ready := 0
		for i := range nodes.Items {
			for _, c := range nodes.Items[i].Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		w.mark(evRegistered, len(nodes.Items) >= n)
		w.mark(evNodeReady, ready >= n)
	}
	if !w.seen(evRegistered) {
		return
	}
	count := func(ns, selector string) int {
		pods, err := w.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return 0
		}
		k := 0
		for i := range pods.Items {
			if podReady(&pods.Items[i]) {
				k++
			}
		}
		return k
	}
	w.mark(evAgents, count("fjord-system", "app.kubernetes.io/name=fjord-agent") >= n)
	w.mark(evDNS, count("kube-system", "k8s-app=kube-dns") >= 1)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// cmdlines returns every process's command line, arguments joined by spaces.
func cmdlines() map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && len(b) > 0 {
			out[pid] = strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		}
	}
	return out
}
