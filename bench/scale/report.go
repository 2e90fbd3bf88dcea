package main

// The measured section of docs/scale.md.

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
)

type results struct {
	Machine                             string
	Nodes, Services, Endpoints          int
	Stages                              []memStage
	Phases                              []phase
	NodeSizes, ServiceSizes, SliceSizes sizes
	ProgramAll, SliceWrites             time.Duration
	LoadBefore, Steady                  string
	Duration                            time.Duration
}

type memStage struct {
	Name                    string
	HeapAlloc, HeapSys, Sys float64 // bytes, after a GC
	RSS, HWM                float64 // bytes
}

// sizes of one object: protobuf (what fjord's clients ask for) and JSON.
type sizes struct{ Proto, JSON int }

type protoMarshaler interface{ Marshal() ([]byte, error) }

func objectSizes(o any) sizes {
	var s sizes
	if m, ok := o.(protoMarshaler); ok {
		if b, err := m.Marshal(); err == nil {
			s.Proto = len(b)
		}
	}
	if b, err := json.Marshal(o); err == nil {
		s.JSON = len(b)
	}
	return s
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s: %d CPUs (%s), kernel %s, %s; shared with other work", host, runtime.NumCPU(), benchkit.CPUModel(), benchkit.KernelRelease(), runtime.Version())
}

func (r results) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("_Written by `make bench-scale` (`bench/scale`) on %s UTC, run time %s, load average before the run %s. Rerun to refresh; everything between the bench-scale markers is regenerated._\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), r.Duration.Round(time.Second), r.LoadBefore)
	p("Machine: %s. kube-apiserver v1.37.2 on fjord's embedded etcd, one `fjord agent --kubeconfig` (vxlan, defaults) in a network namespace of its own; %d other Nodes and their Leases, created through the API as kubelets do; %d Services with one EndpointSlice of %d endpoints each, and the IPAddress objects of their ClusterIPs, written one by one into etcd as kube-apiserver stores them (through the API that takes kube-apiserver most of half an hour here), so that every informer sees them as created through it. The timed changes go through the API.\n\n",
		r.Machine, r.Nodes, r.Services, r.Endpoints)

	p("**Agent memory**, read from its profiling endpoint after a forced GC (Go heap in use) and from /proc (RSS):\n\n")
	p("| cluster | Go heap live MiB | Go heap from the OS MiB | RSS MiB | RSS peak MiB |\n|---|---:|---:|---:|---:|\n")
	for _, s := range r.Stages {
		p("| %s | %.1f | %.1f | %.1f | %.1f |\n", s.Name, mib(s.HeapAlloc), mib(s.HeapSys), mib(s.RSS), mib(s.HWM))
	}
	if len(r.Stages) == 3 {
		perNode := (r.Stages[1].HeapAlloc - r.Stages[0].HeapAlloc) / float64(r.Nodes)
		perSvc := (r.Stages[2].HeapAlloc - r.Stages[1].HeapAlloc) / float64(r.Services)
		p("\nPer object (live heap): **%.1f KiB per Node**, **%.2f KiB per Service with its EndpointSlice** (the informers' caches, the service map, what the last sync keeps). ", perNode/1024, perSvc/1024)
	}
	p("Object sizes as written: Node %d B protobuf / %d B JSON (25 images in its status, as a kubelet reports up to 50), Service %d / %d B, EndpointSlice %d / %d B. ",
		r.NodeSizes.Proto, r.NodeSizes.JSON, r.ServiceSizes.Proto, r.ServiceSizes.JSON, r.SliceSizes.Proto, r.SliceSizes.JSON)
	p("From the first EndpointSlice written to the agent serving the last of them: %.0f s, of which writing the %d slices took %.0f s.\n\n", r.ProgramAll.Seconds(), r.Services, r.SliceWrites.Seconds())

	p("**While only heartbeats change** (all %d Leases renewed every 10 s; the Node status posted every 5 min as kubelets do by default, then every 10 s as kubelets before 1.17 or with `nodeStatusReportFrequency: 10s` do), over a window per phase, both starting once the agent has run %s:\n\n", r.Nodes, r.Steady)
	p("| phase | Lease renewals/s | Node status posts/s | Node events to the agent /s | agent receives | per Node event | agent CPU | kube-apiserver CPU | window |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, ph := range r.Phases {
		per := "—"
		if ev := ph.Events["nodes"]; ev > 0.5 {
			per = fmt.Sprintf("%.1f KB", ph.AgentBytes/ev/1000)
			if ph.EvSize["nodes"] > 0 && ph.AgentBytes/ev < ph.EvSize["nodes"]/2 {
				per += " (gzip)"
			}
		}
		p("| %s | %.1f | %.1f | %.1f | %.1f KB/s | %s | %.1f%% of a core | %.0f%% of a core | %.0f s |\n", ph.Name, ph.LeaseRate, ph.StatusRate,
			ph.Events["nodes"], ph.AgentBytes/1000, per, 100*ph.AgentCPU, 100*ph.APIServerCPU, ph.Window.Seconds())
	}
	p("\nWhat the agent receives is counted by the kernel on its TLS connection to the API server (`ss -ti`): all its watches, though only Nodes change here. The Node events are kube-apiserver's own count (`apiserver_watch_events_total`) divided by the Node watches open (%.0f: the agent's and one of kube-apiserver's own); their encoded size before compression averages %.1f KB over both (`apiserver_watch_events_sizes`). The agent's informers start with streaming lists (client-go's watch-list), and kube-apiserver v1.37 gzips those streams (feature WatchListCompression) until they end (after 5 to 10 minutes, when the reflector starts an ordinary watch): so a phase measured while the stream lasts shows compressed bytes (marked gzip), a later one what a long-running agent receives. Lease events reach no agent: fjord does not watch Leases.", r.nodeWatches(), r.nodeEventSize()/1000)
	for _, ph := range r.Phases {
		if want := float64(r.Nodes) / ph.Status.Seconds(); ph.StatusRate < 0.9*want || ph.LeaseRate < 0.9*float64(r.Nodes)/ph.Lease.Seconds() {
			p(" In phase %q the heartbeats fell behind their schedule: kube-apiserver, sharing the machine, could not keep up.", ph.Name)
		}
	}
	for _, ph := range r.Phases {
		if ph.Fails > 0 {
			p(" %d heartbeat writes failed in phase %q.", ph.Fails, ph.Name)
		}
	}
	p("\n\n**One EndpointSlice change to the kernel**: a Service's only endpoint replaced; timed from kube-apiserver acknowledging the update until a new connection to the ClusterIP, made from the agent's namespace every 5 ms, reaches the new endpoint. Each change is written 1.1 s after the one before it has been served: the service proxy syncs at most once per minSyncPeriod (1 s by default), and at once after a quiet second:\n\n")
	p("| phase | changes | median ms | p90 ms | max ms |\n|---|---:|---:|---:|---:|\n")
	for _, ph := range r.Phases {
		p("| %s | %d | %.0f | %.0f | %.0f |\n", ph.Name, len(ph.Change), benchkit.Median(ph.Change), benchkit.Quantile(ph.Change, 0.9), benchkit.Quantile(ph.Change, 1))
	}
	return b.String()
}

func (r results) nodeWatches() float64 {
	if len(r.Phases) == 0 {
		return 0
	}
	return r.Phases[len(r.Phases)-1].NodeWatches
}

func (r results) nodeEventSize() float64 {
	if len(r.Phases) == 0 {
		return 0
	}
	return r.Phases[len(r.Phases)-1].EvSize["nodes"]
}
