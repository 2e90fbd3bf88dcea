package main

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/lab"
)

type machine struct {
	CPUs                                int
	CPU, Kernel, Go, Containerd, Commit string
	LoadStart, LoadEnd, MemTotal, Runc  string
}

type results struct {
	Start, End time.Time
	Machine    machine
	Up         []*upRun
	PodLabUp   time.Duration
	Variants   []*variant
	CIDRs      map[int]netip.Prefix
	RefNote    string
	MemIdle    []nodeMem
}

func machineInfo(fjord string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: benchkit.LoadAvg()}
	m.CPU, m.Kernel = benchkit.CPUModel(), benchkit.KernelRelease()
	m.Containerd = firstLine("containerd", "--version")
	m.Runc = firstLine("runc", "--version")
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			var kb float64
			fmt.Sscan(f[1], &kb)
			m.MemTotal = fmt.Sprintf("%.0f GiB", kb/(1<<20))
		}
	}
	m.Commit = benchkit.Commit(filepath.Dir(filepath.Dir(fjord)))
	return m
}

func firstLine(name string, args ...string) string {
	out, err := benchkit.RunCmd(context.Background(), 10*time.Second, os.Environ(), name, args...)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func pluginNote(refDir string) string {
	size := func(p string) string {
		fi, err := os.Stat(p)
		if err != nil {
			return "?"
		}
		return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
	}
	note := fmt.Sprintf("bridge %s, host-local %s, from %s", size(filepath.Join(refDir, "bridge")), size(filepath.Join(refDir, "host-local")), refDir)
	if out, err := exec.Command("go", "version", "-m", filepath.Join(refDir, "bridge")).Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "mod" {
				note += fmt.Sprintf(" (%s %s", f[1], f[2])
				if strings.Contains(string(out), "CGO_ENABLED=0") {
					note += ", CGO_ENABLED=0"
				}
				note += ")"
				break
			}
		}
	}
	return note
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func durs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// medRange formats the median and range of values in seconds.
func medRange(v []float64) string {
	if len(v) == 0 {
		return "—"
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.2f s", v[0])
	}
	return fmt.Sprintf("%.2f s (%.2f – %.2f)", benchkit.Median(v), benchkit.Quantile(v, 0), benchkit.Quantile(v, 1))
}

func ms(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", 1000*v)
}

func (r *results) markdown() string {
	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	m := r.Machine
	p("_Written by `make bench-kubelab` (`bench/kubelab`) on %s, run time %s. Rerun to refresh; everything between the bench-kubelab markers is regenerated._\n\n",
		r.Start.Format("2006-01-02 15:04 UTC"), r.End.Sub(r.Start).Round(time.Second))
	p("**Machine:** %d CPUs, %s, %s RAM; kernel %s; %s; %s; %s; fjord %s. Load average at start %s, at end %s (the machine is shared: other builds, labs and test suites ran alongside, so absolute times move; compare within a table).\n\n",
		m.CPUs, m.CPU, m.MemTotal, m.Kernel, m.Go, m.Containerd, m.Runc, m.Commit, m.LoadStart, m.LoadEnd)
	if len(r.Up) > 0 {
		r.upSection(p)
	}
	if len(r.Variants) > 0 {
		r.podSection(p)
		r.memSection(p)
	}
	p("### What the numbers say\n\n")
	if len(r.Up) > 0 {
		r.upSayings(p)
	}
	if len(r.Variants) > 0 {
		r.sayings(p)
	}
	p("- Absolute times move with the machine's load (2 shared CPUs, load average %s at the start); the ratios come from runs interleaved in time.\n", r.Machine.LoadStart)
	return s.String()
}

func (r *results) upSection(p func(string, ...any)) {
	var warm []*upRun
	var fresh *upRun
	for _, u := range r.Up {
		if u.Fresh {
			fresh = u
		} else {
			warm = append(warm, u)
		}
	}
	p("### `fjord lab up --kubernetes --runtime containerd`\n\n")
	p("The command as a user runs it (3 nodes, the demo and the ingress included), lab `%s` on %s, each run followed by `fjord lab down`. ", *flagName, *flagSubnet)
	p("**Warm**: %d runs with everything cached (Kubernetes binaries, the lab's images, the Go build cache). ", len(warm))
	if fresh != nil {
		p("**Fresh Kubernetes cache**: one run with `FJORD_KUBE_CACHE` pointing at an empty directory, so the Kubernetes binaries (kube-apiserver, controller-manager, scheduler, kubelet, kubectl), CoreDNS, pause, agnhost and the other test images are all made again, but with the Go build cache (shared, `~/.cache/go-build`) and module cache warm: linking and image writing, no compiling. ")
	}
	p("Step times are the lab's own (`• step ... ok (time)`); \"before the first step\" is the rest of the wall time: fjord's start, `kubebuild` finding (or making) the Kubernetes binaries, preflight checks.\n\n")
	// header starts a table: a warm column, and a fresh one when that run was made.
	header := func(first string) {
		p("| %s | warm: median (min – max) |", first)
		if fresh != nil {
			p(" fresh Kubernetes cache |")
		}
		p("\n|---|---:|")
		if fresh != nil {
			p("---:|")
		}
		p("\n")
	}
	header("step")
	row := func(name string, warmV []float64, freshV *time.Duration) {
		p("| %s | %s |", name, medRange(warmV))
		if fresh != nil {
			if freshV != nil {
				p(" %s |", secs(*freshV))
			} else {
				p(" — |")
			}
		}
		p("\n")
	}
	var pre []float64
	for _, u := range warm {
		pre = append(pre, (u.Wall - u.UpIn).Seconds())
	}
	var fpre *time.Duration
	if fresh != nil {
		d := fresh.Wall - fresh.UpIn
		fpre = &d
	}
	row("before the first step (fjord start, Kubernetes binaries found or linked, preflight)", pre, fpre)
	ref := warm
	if len(ref) == 0 {
		ref = []*upRun{fresh}
	}
	for k, st := range ref[0].Steps {
		var v []float64
		for _, u := range warm {
			if k < len(u.Steps) {
				v = append(v, u.Steps[k].Dur.Seconds())
			}
		}
		var fv *time.Duration
		if fresh != nil && k < len(fresh.Steps) {
			fv = &fresh.Steps[k].Dur
		}
		row(st.Name, v, fv)
	}
	var wall, down []float64
	for _, u := range warm {
		wall, down = append(wall, u.Wall.Seconds()), append(down, u.Down.Seconds())
	}
	var fw, fd *time.Duration
	if fresh != nil {
		fw, fd = &fresh.Wall, &fresh.Down
	}
	row("**total, wall time of `lab up`**", wall, fw)
	row("`lab down` (everything: processes, mounts, cgroups, namespaces, containerd state)", down, fd)
	p("\n")

	// Inside the real-node step.
	realStep := -1
	for k, st := range ref[0].Steps {
		if strings.Contains(st.Name, "real nodes") {
			realStep = k
		}
	}
	if realStep > 0 {
		p("Inside the real-node step, watched from outside (the processes the lab starts, and the API every 200 ms): when each stage first held on **every** node, counted from the start of the step. The kubelets start once each node's containerd has imported the images (pause, agnhost, busybox, CoreDNS, ... and fjord's, about 300 MB per node, the three nodes in parallel); a Node turns Ready once containerd has a CNI configuration, which fjord's agent pod writes.\n\n")
		header("stage")
		for _, ev := range eventOrder {
			var v []float64
			for _, u := range warm {
				if t, ok := u.Events[ev]; ok && realStep < len(u.Steps) {
					v = append(v, (t - u.Steps[realStep-1].End).Seconds())
				}
			}
			var fv *time.Duration
			if fresh != nil && realStep < len(fresh.Steps) {
				if t, ok := fresh.Events[ev]; ok {
					d := t - fresh.Steps[realStep-1].End
					fv = &d
				}
			}
			row(ev, v, fv)
		}
		p("\n")
	}
	if len(ref[0].ImportOrder) > 0 {
		p("Of that, the image imports (`ctr -n k8s.io images import`, one image after the other on each node, the three nodes at once), as the watcher saw them (polling every 200 ms, so an import shorter than that may be counted in the one before): median over nodes and runs.\n\n")
		header("image")
		for _, img := range ref[0].ImportOrder {
			var v []float64
			for _, u := range warm {
				v = append(v, durs(u.Imports[img])...)
			}
			var fv *time.Duration
			if fresh != nil && len(fresh.Imports[img]) > 0 {
				d := time.Duration(benchkit.Median(durs(fresh.Imports[img])) * float64(time.Second))
				fv = &d
			}
			row(fmt.Sprintf("`%s` (%.0f MB)", img, float64(ref[0].ImportSizes[img])/1e6), v, fv)
		}
		p("\n")
	}
	if fresh != nil && len(fresh.Kubebuild) > 0 {
		p("What the fresh cache cost (the builder's own lines):\n\n")
		for _, l := range fresh.Kubebuild {
			p("- `%s`\n", l)
		}
		p("\n")
	}
	p("**Cold, from an empty Go build cache** (not measured by this benchmark: the Go build cache is shared with every other build on the machine and cannot be emptied for one run): the figures from [kubernetes-build.md](kubernetes-build.md) and the research run (`/work/shared/research/kubernetes-lab.md`), on the same kind of machine: the six Kubernetes commands 13.9 min (+4.1 GB of Go build cache), agnhost 3.4 min, CoreDNS 2.5 min, pause 8 s — about **20 minutes** before the first `lab up` with real kubelets can start its steps (e2e.test, which only `make conformance` needs, adds about 3 min). After that, every `lab up` is the warm column.\n\n")
}

func (r *results) podSection(p func(string, ...any)) {
	fj, ref := r.Variants[0], r.Variants[1]
	nodes := len(r.CIDRs)
	p("### Pod start-up: a %d-pod Deployment, fjord against bridge + host-local\n\n", *flagPods)
	p("One lab (`lab up --kubernetes --runtime containerd --no-demo --no-ingress`, up in %s), %d nodes, each a real kubelet with its own containerd; fjord installed by deploy/fjord.yaml, CoreDNS running. ", secs(r.PodLabUp), nodes)
	p("A round applies a Deployment of %d `pause` pods (image `%s`, already on every node; no probes, so Ready means every container runs; a topology spread constraint puts %d on each node; the service-account token is mounted as usual) with the lab's `kubectl apply`, and times, from just before kubectl starts, when each pod is first seen Ready through a watch. Then it deletes the Deployment and waits until every pod is gone and every address released (so every CNI DEL has run) before the next round. ",
		*flagPods, "registry.k8s.io/pause:3.10.2", *flagPods/max(nodes, 1))
	p("The two CNIs alternate round by round (the order flips every round), after one unmeasured warm-up round each; %d measured rounds each; medians over rounds.\n\n", len(fj.Rounds))
	p("- **fjord**: what deploy/fjord.yaml's agent installs: `10-fjord.conflist` (fjord, then portmap), the slim `fjord` plugin in the node's /opt/cni/bin.\n")
	p("- **bridge + host-local %s**: `%s` written in front of it on every node (containerd uses the first list by name and re-reads the directory on change): bridge `%s` (isGateway, no ipMasq) with host-local, then portmap, the shape of containerd's own example template. host-local takes the upper half of the node's pod CIDR from its Node (", refVersion, refConfName, refBridge)
	for i := 1; i <= nodes; i++ {
		if i > 1 {
			p(", ")
		}
		p("n%d %v", i, upperHalf(r.CIDRs[i]))
	}
	p("), so it never hands out an address fjord holds for CoreDNS, and its pods are reachable (the bridge's /25 route is more specific than the agent's unreachable route for the /24). Plugins: %s; the portmap and loopback are the ones fjord's image installs (v1.10.0, static).\n", r.RefNote)
	p("- Each round checks that every pod's address was allocated by the intended network (its IPAM directory on the node), so a switch containerd had not picked up would fail the run, not skew it.\n\n")

	type col struct {
		name string
		get  func(*podRound) float64
	}
	cols := []col{
		{"all %d pods Ready", func(x *podRound) float64 { return x.AllReady.Seconds() }},
		{"per pod: p50", func(x *podRound) float64 { return x.PodP50.Seconds() }},
		{"per pod: p90", func(x *podRound) float64 { return x.PodP90.Seconds() }},
		{"first pod Ready", func(x *podRound) float64 { return x.FirstReady.Seconds() }},
		{"last pod bound to a node", func(x *podRound) float64 { return x.AllScheduled.Seconds() }},
		{"delete → all gone, addresses released", func(x *podRound) float64 { return x.Delete.Seconds() }},
	}
	values := func(v *variant, get func(*podRound) float64) []float64 {
		var out []float64
		for _, x := range v.Rounds {
			out = append(out, get(x))
		}
		return out
	}
	p("| from `kubectl apply` | fjord: median (min – max) | bridge + host-local: median (min – max) | fjord ÷ reference |\n|---|---:|---:|---:|\n")
	for _, c := range cols {
		name := c.name
		if strings.Contains(name, "%d") {
			name = fmt.Sprintf(name, *flagPods)
		}
		a, b := values(fj, c.get), values(ref, c.get)
		p("| %s | %s | %s | **%.2f** |\n", name, medRange(a), medRange(b), benchkit.Median(a)/benchkit.Median(b))
	}
	p("\nEvery round: all %d pods Ready, and CNI ADD per pod (containerd's timer, below):\n\n| round | fjord | bridge + host-local | fjord CNI ADD | reference CNI ADD |\n|---|---:|---:|---:|---:|\n", *flagPods)
	for k := range fj.Rounds {
		if k < len(ref.Rounds) {
			a, b := fj.Rounds[k], ref.Rounds[k]
			p("| %d | %.2f s | %.2f s | %s | %s |\n", a.Round, a.AllReady.Seconds(), b.AllReady.Seconds(), ms(a.Add.mean("add")), ms(b.Add.mean("add")))
		}
	}

	p("\n#### Where a pod's start goes, by containerd's own timers\n\n")
	p("containerd's CRI plugin times each stage of a sandbox and container (Prometheus histograms on each node's `/v1/metrics`, served on the node's loopback, %v). For each round the benchmark reads them before the apply, after the last pod is Ready and after the deletion, and divides the difference in total time by the difference in count: the mean per pod of that round, over all nodes; the table gives the median over rounds. The pods of a node start concurrently (10 at a time here), so these are latencies under that concurrency, not CPU time.\n\n", lab.RealNodeMetricsAddr)
	p("| stage (mean per pod) | fjord | bridge + host-local | fjord ÷ reference |\n|---|---:|---:|---:|\n")
	for _, t := range criTimers {
		get := func(x *podRound) float64 {
			if t.Key == "del" {
				return x.Del.mean(t.Key)
			}
			return x.Add.mean(t.Key)
		}
		a, b := values(fj, get), values(ref, get)
		p("| %s | %s | %s | %.2f |\n", t.What, ms(benchkit.Median(a)), ms(benchkit.Median(b)), benchkit.Median(a)/benchkit.Median(b))
	}
	p("\n")
}

func (r *results) memSection(p func(string, ...any)) {
	p("### Memory of a real node\n\n")
	p("Resident memory from /proc of each node's containerd, kubelet and fjord agent (VmRSS; the agent is the DaemonSet pod's process, found by its cgroup under the node's cgroup root), of its containerd shims (one per pod sandbox; PSS, since they share their program's pages), and the anonymous memory charged to the node's pod cgroups (`total_rss`: heap and stacks of every pod's processes, the agent's included, not the programs' text). Idle: after `lab up`, the node running fjord's agent and perhaps one of the two CoreDNS pods. With pods: during the first measured round, %d pause pods per node running.\n\n", *flagPods/max(len(r.MemIdle), 1))
	p("| node | | containerd | kubelet | fjord agent | shims (PSS) | pods' cgroups |\n|---|---|---:|---:|---:|---:|---:|\n")
	var with []nodeMem
	for _, v := range r.Variants {
		if len(v.Rounds) > 0 && v.Rounds[0].MemWith != nil && v.Key == "fjord" {
			with = v.Rounds[0].MemWith
		}
	}
	for i, m := range r.MemIdle {
		p("| %s | idle | %.0f MiB | %.0f MiB | %.0f MiB | %d: %.0f MiB | %.0f MiB |\n", m.Node, m.Containerd, m.Kubelet, m.Agent, m.Shims, m.ShimsMiB, m.Pods)
		if i < len(with) {
			w := with[i]
			p("| | with pods | %.0f MiB | %.0f MiB | %.0f MiB | %d: %.0f MiB | %.0f MiB |\n", w.Containerd, w.Kubelet, w.Agent, w.Shims, w.ShimsMiB, w.Pods)
		}
	}
	p("\n")
}

func (r *results) sayings(p func(string, ...any)) {
	fj, ref := r.Variants[0], r.Variants[1]
	med := func(v *variant, get func(*podRound) float64) float64 {
		var out []float64
		for _, x := range v.Rounds {
			out = append(out, get(x))
		}
		return benchkit.Median(out)
	}
	all := func(x *podRound) float64 { return x.AllReady.Seconds() }
	pod := func(x *podRound) float64 { return x.PodP50.Seconds() }
	add := func(x *podRound) float64 { return x.Add.mean("add") }
	sbox := func(x *podRound) float64 {
		return x.Add.mean("net") + x.Add.mean("sandbox") + x.Add.mean("create") + x.Add.mean("start")
	}
	p("- All %d pods Ready: fjord %.2f s, bridge + host-local %.2f s (median of %d rounds): fjord takes %.2f× the reference's time.\n",
		*flagPods, med(fj, all), med(ref, all), len(fj.Rounds), med(fj, all)/med(ref, all))
	p("- CNI ADD inside containerd (loopback plus the plugin chain) costs %s per pod with fjord and %s with bridge + host-local; ",
		ms(med(fj, add)), ms(med(ref, add)))
	p("of the runtime's whole part of a pod's start (network, sandbox, container create and start: %s with fjord) it is %.0f%%, and %.0f%% of the median pod's time from `kubectl apply` to Ready (%.2f s). ",
		ms(med(fj, sbox)), 100*med(fj, add)/med(fj, sbox), 100*med(fj, add)/med(fj, pod), med(fj, pod))
	p("The rest of the pod's time is outside containerd: the API server, the ReplicaSet controller's batches, the scheduler, the kubelet's pod worker (the service-account token volume) and its status update.\n")
	fjWins := 0
	for k := range fj.Rounds {
		if k < len(ref.Rounds) && fj.Rounds[k].Add.mean("add") < ref.Rounds[k].Add.mean("add") {
			fjWins++
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, k := range []string{"sandbox", "create", "start"} {
		get := func(x *podRound) float64 { return x.Add.mean(k) }
		q := med(fj, get) / med(ref, get)
		lo, hi = min(lo, q), max(hi, q)
	}
	p("- fjord's CNI ADD was the faster of the two in %d of %d rounds (each pair of rounds ran back to back). The Ready times swing far more from round to round than that difference (see every round above). How much of a ratio is noise on this machine shows where the CNI plays no part: the last pod bound to a node came out at %.2f×, containerd's stages after the network (the pause sandbox by runc, the app container created and started) at %.2f–%.2f×.\n",
		fjWins, len(fj.Rounds), med(fj, func(x *podRound) float64 { return x.AllScheduled.Seconds() })/med(ref, func(x *podRound) float64 { return x.AllScheduled.Seconds() }), lo, hi)
}

// upSayings sums up the lab up runs: where the warm time goes, what a fresh cache adds.
func (r *results) upSayings(p func(string, ...any)) {
	var warm []*upRun
	var fresh *upRun
	for _, u := range r.Up {
		if u.Fresh {
			fresh = u
		} else {
			warm = append(warm, u)
		}
	}
	if len(warm) > 0 {
		var total, nodes, imports, agn, fj []float64
		for _, u := range warm {
			total = append(total, u.Wall.Seconds())
			for k, st := range u.Steps {
				if strings.Contains(st.Name, "real nodes") {
					nodes = append(nodes, st.Dur.Seconds())
					if t, ok := u.Events[evKubelets]; ok && k > 0 {
						imports = append(imports, (t - u.Steps[k-1].End).Seconds())
					}
				}
			}
			agn = append(agn, durs(u.Imports["agnhost.tar"])...)
			fj = append(fj, durs(u.Imports["fjord-image.tar"])...)
		}
		p("- Warm, `lab up --kubernetes --runtime containerd` takes %.1f s (median of %d). The real nodes' step is %.1f s of it, and %.1f s of that pass before the kubelets start, while containerd imports the images, one after the other: agnhost (%.1f s), which only the e2e suites run, and fjord's own image (%.1f s; the lab packs the unstripped `bin/fjord` it runs from) are most of it. Importing agnhost only for `make conformance`, and packing a stripped fjord, is where a faster `lab up` would come from; the control plane (%.1f s) is next.\n",
			benchkit.Median(total), len(total), benchkit.Median(nodes), benchkit.Median(imports), benchkit.Median(agn), benchkit.Median(fj), medStep(warm, "Kubernetes control plane"))
	}
	if fresh != nil {
		p("- With an empty Kubernetes cache (the Go build cache warm), the same command takes %.0f s: linking the Kubernetes binaries before the first step (%.0f s) and the images step (%.0f s: agnhost, CoreDNS, pause and the test programs linked, the image tarballs written) are the difference; nothing is compiled.\n",
			fresh.Wall.Seconds(), (fresh.Wall - fresh.UpIn).Seconds(), stepDur(fresh, "images"))
	}
}

// stepDur is the duration of the first step whose name starts with prefix, in seconds.
func stepDur(u *upRun, prefix string) float64 {
	for _, st := range u.Steps {
		if strings.HasPrefix(st.Name, prefix) {
			return st.Dur.Seconds()
		}
	}
	return nan
}

// medStep is the median duration of a step over runs, in seconds.
func medStep(runs []*upRun, prefix string) float64 {
	var v []float64
	for _, u := range runs {
		if d := stepDur(u, prefix); !math.IsNaN(d) {
			v = append(v, d)
		}
	}
	return benchkit.Median(v)
}
