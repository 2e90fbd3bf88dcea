package doctor

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// EtcdMetrics is what doctor reads from an etcd member's /metrics.
type EtcdMetrics struct {
	HasLeader       bool
	LeaderChanges   float64
	FsyncP99        time.Duration // WAL fsync, 99th percentile (-1 if no samples)
	FsyncCount      uint64
	CommitP99       time.Duration // backend commit, 99th percentile (-1 if no samples)
	DBSize, DBInUse float64       // bytes
	Quota           float64       // backend quota bytes
	ProposalsFailed float64
}

// ParseEtcdMetrics reads the Prometheus text exposition of an etcd member.
func ParseEtcdMetrics(text string) (EtcdMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return EtcdMetrics{}, fmt.Errorf("etcd metrics: %w", err)
	}
	if _, ok := fams["etcd_server_has_leader"]; !ok {
		return EtcdMetrics{}, fmt.Errorf("etcd metrics: no etcd_server_has_leader (is this an etcd member?)")
	}
	m := EtcdMetrics{
		HasLeader:       gauge(fams, "etcd_server_has_leader") == 1,
		LeaderChanges:   gauge(fams, "etcd_server_leader_changes_seen_total"),
		DBSize:          gauge(fams, "etcd_mvcc_db_total_size_in_bytes"),
		DBInUse:         gauge(fams, "etcd_mvcc_db_total_size_in_use_in_bytes"),
		Quota:           gauge(fams, "etcd_server_quota_backend_bytes"),
		ProposalsFailed: gauge(fams, "etcd_server_proposals_failed_total"),
	}
	m.FsyncP99, m.FsyncCount = quantile(fams, "etcd_disk_wal_fsync_duration_seconds", 0.99)
	m.CommitP99, _ = quantile(fams, "etcd_disk_backend_commit_duration_seconds", 0.99)
	return m, nil
}

// gauge sums a gauge's or counter's samples (0 when absent).
func gauge(fams map[string]*dto.MetricFamily, name string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

type bucket struct {
	le    float64
	count float64
}

// quantile estimates a histogram quantile the way PromQL's histogram_quantile does:
// linear interpolation inside the bucket the rank falls in.
func quantile(fams map[string]*dto.MetricFamily, name string, q float64) (time.Duration, uint64) {
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 || f.GetMetric()[0].Histogram == nil {
		return -1, 0
	}
	h := f.GetMetric()[0].GetHistogram()
	var bs []bucket
	for _, b := range h.GetBucket() {
		bs = append(bs, bucket{b.GetUpperBound(), float64(b.GetCumulativeCount())})
	}
	v := histogramQuantile(q, bs, float64(h.GetSampleCount()))
	if v < 0 {
		return -1, h.GetSampleCount()
	}
	return time.Duration(v * float64(time.Second)), h.GetSampleCount()
}

func histogramQuantile(q float64, bs []bucket, total float64) float64 {
	if total == 0 || len(bs) == 0 {
		return -1
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe // beyond the last finite bucket: its bound is all we know
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLe, prevCount = b.le, b.count
	}
	return prevLe
}
