package main

// Filling the API server stage by stage, and what is measured: the agent's memory
// after each stage, its CPU and received watch bytes over a window while the
// kubelets heartbeat, and EndpointSlice changes until the kernel serves them.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/bench/benchkit"
)

// fill creates the cluster stage by stage, starting the agent on an empty one and
// measuring its memory after each stage.
func (b *bench) fill(ctx context.Context) error {
	if _, err := b.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := b.createNode(ctx, 0); err != nil {
		return err
	}
	b.logf("starting the agent")
	if err := b.startAgent(ctx); err != nil {
		return err
	}
	if err := b.stage(ctx, "its own Node only"); err != nil {
		return err
	}

	t0 := time.Now()
	if err := b.parallel(ctx, "Nodes and Leases", *flagNodes, func(ctx context.Context, i int) error { return b.createNode(ctx, i+1) }); err != nil {
		return err
	}
	b.logf("%d Nodes and Leases created through the API in %.1f s", *flagNodes, time.Since(t0).Seconds())
	if err := poll(ctx, 3*time.Minute, 500*time.Millisecond, "the agent routes to every node", func() (bool, error) {
		n, err := b.peerRoutes(ctx)
		return n >= *flagNodes, err
	}); err != nil {
		return err
	}
	b.res.NodeSizes = objectSizes(node(1, nodeIP(1), podCIDR(1)))
	if err := b.stage(ctx, fmt.Sprintf("+ %d Nodes", *flagNodes)); err != nil {
		return err
	}

	n := *flagServices
	now := metav1.Now()
	var ips, svcs, slices []storedObject
	for i := range n {
		o := storedService(i, now)
		svcs, ips = append(svcs, o[0]), append(ips, o[1])
		es := slice(i)
		if i == n-1 { // the last one: when it answers, the agent has programmed all
			es = slice(i, backends["a"])
		}
		slices = append(slices, storedSlice(es, now))
	}
	// The ClusterIPs' IPAddresses first: kube-apiserver's repair controller looks for
	// them when it sees a Service.
	if err := b.putAll(ctx, "IPAddresses", ips); err != nil {
		return err
	}
	if err := b.putAll(ctx, "Services", svcs); err != nil {
		return err
	}
	t0 = time.Now()
	if err := b.putAll(ctx, "EndpointSlices", slices); err != nil {
		return err
	}
	b.res.SliceWrites = time.Since(t0)
	if err := b.waitServes(ctx, n-1, "scale-a", 5*time.Minute); err != nil {
		return err
	}
	b.res.ProgramAll = time.Since(t0)
	b.res.ServiceSizes = objectSizes(service(1))
	b.res.SliceSizes = objectSizes(slice(1))
	b.logf("the agent serves all %d services, %.1f s after the first EndpointSlice was written", n, b.res.ProgramAll.Seconds())
	return b.stage(ctx, fmt.Sprintf("+ %d Services and EndpointSlices", n))
}

// createNode registers Node i (0: the agent's own) with its status, as the kubelet
// does, and its Lease.
func (b *bench) createNode(ctx context.Context, i int) error {
	ip, cidr := nodeIP(i), podCIDR(i)
	if i == 0 {
		ip, cidr = nodeAddr, agentCIDR
	}
	nd := node(i, ip, cidr)
	created, err := b.admin.CoreV1().Nodes().Create(ctx, nd, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	created.Status = nd.Status
	if _, err := b.admin.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return err
	}
	_, err = b.admin.CoordinationV1().Leases(lease(nd.Name).Namespace).Create(ctx, lease(nd.Name), metav1.CreateOptions{})
	return err
}

// stage records the agent's memory now, after a garbage collection.
func (b *bench) stage(ctx context.Context, name string) error {
	time.Sleep(5 * time.Second) // let the last sync's garbage go
	h, err := b.heap(ctx)
	if err != nil {
		return err
	}
	rss, hwm, err := procMemory(b.agent.PID())
	if err != nil {
		return err
	}
	s := memStage{Name: name, HeapAlloc: h["HeapAlloc"], HeapSys: h["HeapSys"], Sys: h["Sys"], RSS: rss, HWM: hwm}
	b.res.Stages = append(b.res.Stages, s)
	b.logf("agent memory, %s: heap %.1f MiB live, RSS %.1f MiB (peak %.1f)", name, mib(s.HeapAlloc), mib(rss), mib(hwm))
	return nil
}

func mib(v float64) float64 { return v / (1 << 20) }

// heap reads the agent's runtime.MemStats after a GC from its profiling endpoint.
func (b *bench) heap(ctx context.Context) (map[string]float64, error) {
	body, err := b.getIn(ctx, "http://"+debugAddr+"/debug/pprof/heap?gc=1&debug=1", 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("agent heap profile: %w", err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !strings.HasPrefix(line, "# ") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[k] = f
		}
	}
	if out["HeapAlloc"] == 0 {
		return nil, fmt.Errorf("agent heap profile has no MemStats")
	}
	return out, nil
}

// getIn fetches a URL (up to 256 MiB of it: a heap profile at 30,000 Services is
// several) from inside the agent's namespace on a new connection.
func (b *bench) getIn(ctx context.Context, url string, timeout time.Duration) (string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dialIn(b.node), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return string(data), err
}

// procMemory is a process's VmRSS and VmHWM in bytes.
func procMemory(pid int) (rss, hwm float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = v * 1024
		case "VmHWM:":
			hwm = v * 1024
		}
	}
	return rss, hwm, nil
}

// procCPU is a process's user+system CPU time, with that of its children it has
// waited for (the agent's nft runs).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// watchBytes is what the agent's sockets to the API server have received (TLS
// included), from the kernel's TCP counters in its namespace.
func (b *bench) watchBytes(ctx context.Context) (int64, error) {
	out, err := benchkit.RunCmd(ctx, 30*time.Second, os.Environ(), "ip", "netns", "exec", nsNode,
		"ss", "-tinH", "state", "established", "dst", netip.AddrPortFrom(apiAddr, apiPort).String())
	if err != nil {
		return 0, err
	}
	var total int64
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "bytes_received:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	}
	return total, nil
}

// watchEvents reads kube-apiserver's count and total size of watch events sent, and
// the watches open, by resource.
func (b *bench) watchEvents(ctx context.Context) (count, bytes, watches map[string]float64, err error) {
	raw, err := b.admin.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	count, bytes, watches = map[string]float64{}, map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var into map[string]float64
		switch {
		case strings.HasPrefix(line, "apiserver_watch_events_total{"):
			into = count
		case strings.HasPrefix(line, "apiserver_watch_events_sizes_sum{"):
			into = bytes
		case strings.HasPrefix(line, "apiserver_longrunning_requests{") && strings.Contains(line, `verb="WATCH"`):
			into = watches
		default:
			continue
		}
		_, rest, _ := strings.Cut(line, `resource="`)
		res, _, _ := strings.Cut(rest, `"`)
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		into[res] += v
	}
	return count, bytes, watches, sc.Err()
}

// waitServes polls service i's ClusterIP from the agent's namespace until pod
// answers; it returns when it does.
func (b *bench) waitServes(ctx context.Context, i int, pod string, limit time.Duration) error {
	url := fmt.Sprintf("http://%v:80/", serviceIP(i))
	return poll(ctx, limit, 5*time.Millisecond, fmt.Sprintf("%s serves %s", serviceName(i), pod), func() (bool, error) {
		if !b.agent.Alive() {
			return false, fmt.Errorf("the agent exited:\n%s", b.agent.LogTail(15))
		}
		body, err := b.getIn(ctx, url, 200*time.Millisecond)
		return err == nil && strings.Contains(body, "pod="+pod+" "), err
	})
}

// phase is one load pattern and what was measured under it.
type phase struct {
	Name           string
	Lease, Status  time.Duration
	Window         time.Duration
	LeaseRate      float64 // Lease renewals per second achieved
	StatusRate     float64 // Node status posts per second achieved
	Fails          int64
	AgentCPU       float64 // CPU seconds per second
	APIServerCPU   float64
	AgentBytes     float64            // bytes per second received from the API server
	Events, EvSize map[string]float64 // per watch and second; average size (uncompressed)
	NodeWatches    float64            // Node watches open (the agent's and kube-apiserver's own)
	Change         []float64          // ms, write acknowledged to served
}

// measurePhase runs the kubelets with the phase's timing: a warm-up, the window
// (CPU, bytes, events), then the EndpointSlice changes under the same load.
func (b *bench) measurePhase(ctx context.Context, ph *phase) error {
	b.logf("phase %q: Leases every %v, Node status every %v, %v warm-up, %v window", ph.Name, ph.Lease, ph.Status, *flagWarmup, *flagWindow)
	lctx, stop := context.WithCancel(ctx)
	k := &kubelets{b: b, leaseEvery: ph.Lease, statusEvery: ph.Status, held: map[int]*coordinationv1.Lease{}}
	done := make(chan struct{})
	go func() { k.run(lctx, ctx); close(done) }()
	defer func() { stop(); <-done }()
	select {
	case <-time.After(*flagWarmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	type snap struct {
		t                time.Time
		agent, api       time.Duration
		bytes            int64
		events, evBytes  map[string]float64
		watches          map[string]float64
		leases, statuses int64
	}
	take := func() (s snap, err error) {
		s.t = time.Now()
		if s.agent, err = procCPU(b.agent.PID()); err != nil {
			return s, err
		}
		if s.api, err = procCPU(b.cp.APIServerPID()); err != nil {
			return s, err
		}
		if s.bytes, err = b.watchBytes(ctx); err != nil {
			return s, err
		}
		if s.events, s.evBytes, s.watches, err = b.watchEvents(ctx); err != nil {
			return s, err
		}
		s.leases, s.statuses = k.leases.Load(), k.statuses.Load()
		return s, nil
	}
	s0, err := take()
	if err != nil {
		return err
	}
	select {
	case <-time.After(*flagWindow):
	case <-ctx.Done():
		return ctx.Err()
	}
	s1, err := take()
	if err != nil {
		return err
	}
	secs := s1.t.Sub(s0.t).Seconds()
	ph.Window = s1.t.Sub(s0.t)
	ph.AgentCPU = (s1.agent - s0.agent).Seconds() / secs
	ph.APIServerCPU = (s1.api - s0.api).Seconds() / secs
	ph.AgentBytes = float64(s1.bytes-s0.bytes) / secs
	ph.LeaseRate = float64(s1.leases-s0.leases) / secs
	ph.StatusRate = float64(s1.statuses-s0.statuses) / secs
	ph.Events, ph.EvSize = map[string]float64{}, map[string]float64{}
	ph.NodeWatches = s1.watches["nodes"]
	for res, v := range s1.events {
		// Per watch: every watch of a kind gets every event (none here filters).
		ph.Events[res] = (v - s0.events[res]) / secs / max(s1.watches[res], 1)
		if n := v - s0.events[res]; n > 0 {
			ph.EvSize[res] = (s1.evBytes[res] - s0.evBytes[res]) / n
		}
	}
	b.logf("window: agent %.1f%% CPU, %.0f B/s from the API server; %.1f Lease renewals/s, %.1f status posts/s; Node watch events %.1f/s of %.0f B per watch (%.0f watches)",
		100*ph.AgentCPU, ph.AgentBytes, ph.LeaseRate, ph.StatusRate, ph.Events["nodes"], ph.EvSize["nodes"], ph.NodeWatches)
	if err := b.changes(ctx, ph); err != nil {
		return err
	}
	ph.Fails = k.fails.Load()
	return nil
}

// changes times EndpointSlice changes of random services: each is first pointed at
// backend a (not timed), then, 1.1 s after a answers, at b, timed from the API
// server's answer to the update until a new connection to the ClusterIP reaches b.
func (b *bench) changes(ctx context.Context, ph *phase) error {
	rng := rand.New(rand.NewPCG(uint64(len(b.res.Phases)+1), 42))
	slices := b.admin.DiscoveryV1().EndpointSlices(namespace)
	for range *flagChanges {
		i := rng.IntN(*flagServices - 1)
		set := func(to string) (time.Time, error) {
			cur, err := slices.Get(ctx, slice(i).Name, metav1.GetOptions{})
			if err != nil {
				return time.Time{}, err
			}
			cur.Endpoints = slice(i, backends[to]).Endpoints
			_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
			return time.Now(), err
		}
		if _, err := set("a"); err != nil {
			return err
		}
		if err := b.waitServes(ctx, i, "scale-a", *flagChangeWait); err != nil {
			return err
		}
		// The proxy syncs at most once per minSyncPeriod (1 s): the timed change comes
		// after a quiet second, so it measures the path, not that pause.
		time.Sleep(1100 * time.Millisecond)
		acked, err := set("b")
		if err != nil {
			return err
		}
		if err := b.waitServes(ctx, i, "scale-b", *flagChangeWait); err != nil {
			return err
		}
		ph.Change = append(ph.Change, float64(time.Since(acked).Microseconds())/1000)
	}
	b.logf("changes: median %.0f ms, max %.0f ms", benchkit.Median(ph.Change), benchkit.Quantile(ph.Change, 1))
	return nil
}
