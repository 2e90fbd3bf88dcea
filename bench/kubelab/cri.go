package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/lab"
)

// ---------------------------------------------------------------------------------
// containerd's CRI timers (docker/go-metrics histograms, seconds), read from each
// node's containerd at lab.RealNodeMetricsAddr inside the node's network namespace.

// criTimer is one of the CRI plugin's timers, with the label value that selects it.
type criTimer struct {
	Key, Metric, Label, Value string
	What                      string
}

// criTimers are the stages of a pod's start and stop as containerd 1.6 times them.
var criTimers = []criTimer{
	{Key: "add", Metric: "containerd_cri_network_plugin_operations_duration_seconds_seconds", Label: "operation_type", Value: "set_up_pod",
		What: "CNI ADD: the network list (loopback, then the plugin chain), as go-cni runs it"},
	{Key: "net", Metric: "containerd_cri_sandbox_create_network_seconds",
		What: "the sandbox's network: new network namespace + CNI ADD"},
	{Key: "sandbox", Metric: "containerd_cri_sandbox_runtime_create_seconds",
		What: "the sandbox container (pause) created and started by runc"},
	{Key: "create", Metric: "containerd_cri_container_create_seconds",
		What: "the app container created"},
	{Key: "start", Metric: "containerd_cri_container_start_seconds",
		What: "the app container started"},
	{Key: "del", Metric: "containerd_cri_network_plugin_operations_duration_seconds_seconds", Label: "operation_type", Value: "tear_down_pod",
		What: "CNI DEL on StopPodSandbox"},
}

// criSample is every timer's (sum, count) on one node, or summed over nodes.
type criSample map[string][2]float64

func (s criSample) sub(o criSample) criSample {
	out := criSample{}
	for k, v := range s {
		out[k] = [2]float64{v[0] - o[k][0], v[1] - o[k][1]}
	}
	return out
}

func (s criSample) add(o criSample) {
	for k, v := range o {
		s[k] = [2]float64{s[k][0] + v[0], s[k][1] + v[1]}
	}
}

// mean is the mean of timer k in seconds, NaN without observations.
func (s criSample) mean(k string) float64 {
	v := s[k]
	if v[1] == 0 {
		return nan
	}
	return v[0] / v[1]
}

// criScraper reads the metrics of every node's containerd.
type criScraper struct {
	workers []*benchkit.NSWorker
	clients []*http.Client
}

func newCRIScraper(c lab.Config) (*criScraper, error) {
	s := &criScraper{}
	for i := 1; i <= c.Nodes; i++ {
		w, err := benchkit.NewNSWorker(c.NodeNS(i))
		if err != nil {
			s.close()
			return nil, err
		}
		s.workers = append(s.workers, w)
		// The socket is made on the worker's thread, so it lives in the node's
		// namespace (its loopback is the node's own).
		dial := func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			w.Run(func() {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, addr)
			})
			return conn, err
		}
		s.clients = append(s.clients, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}})
	}
	return s, nil
}

func (s *criScraper) close() {
	for _, w := range s.workers {
		w.Close()
	}
}

// scrape returns every node's timers (index 0 = n1).
func (s *criScraper) scrape(ctx context.Context) ([]criSample, error) {
	var out []criSample
	for i, cl := range s.clients {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lab.RealNodeMetricsAddr.String()+"/v1/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return nil, fmt.Errorf("containerd metrics of n%d: %w", i+1, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("containerd metrics of n%d: %w", i+1, err)
		}
		smp := criSample{}
		for _, t := range criTimers {
			f := fams[t.Metric]
			if f == nil {
				// A labelled timer appears with its first observation.
				smp[t.Key] = [2]float64{}
				continue
			}
			var sum, count float64
			for _, m := range f.GetMetric() {
				if t.Label != "" && labelValue(m, t.Label) != t.Value {
					continue
				}
				if h := m.GetHistogram(); h != nil {
					sum += h.GetSampleSum()
					count += float64(h.GetSampleCount())
				}
			}
			smp[t.Key] = [2]float64{sum, count}
		}
		out = append(out, smp)
	}
	return out, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// total sums per-node samples.
func total(per []criSample) criSample {
	out := criSample{}
	for _, s := range per {
		out.add(s)
	}
	return out
}
