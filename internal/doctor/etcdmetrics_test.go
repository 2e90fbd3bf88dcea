package doctor

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseEtcdMetricsRecorded(t *testing.T) {
	// Recorded from a lab's embedded member (its WAL on tmpfs): 38 fsyncs, 26 under
	// 1 ms, 32 under 2 ms, all under 4 ms.
	rec, err := os.ReadFile("testdata/etcd-metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseEtcdMetrics(string(rec))
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasLeader || m.LeaderChanges != 1 || m.FsyncCount != 38 || m.DBSize != 57344 || m.Quota != 2147483648 {
		t.Fatalf("%+v", m)
	}
	// rank 0.99*38 = 37.62 falls in (2ms, 4ms] holding samples 33..38.
	if m.FsyncP99 <= 2*time.Millisecond || m.FsyncP99 > 4*time.Millisecond {
		t.Fatalf("fsync p99 %v, want in (2ms, 4ms]", m.FsyncP99)
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := bucket{le: math.Inf(1), count: 100}
	for _, tc := range []struct {
		bs    []bucket
		total float64
		want  float64
	}{
		{[]bucket{{0.001, 50}, {0.01, 100}, inf}, 100, 0.001 + 0.009*(99-50)/50},
		{[]bucket{{0.001, 0}, {0.016, 0}, {0.032, 100}, inf}, 100, 0.016 + 0.016*99/100},
		{[]bucket{{0.001, 10}, inf}, 100, 0.001}, // only +Inf holds the rank
		{nil, 0, -1},
	} {
		if got := histogramQuantile(0.99, tc.bs, tc.total); got-tc.want > 1e-12 || tc.want-got > 1e-12 {
			t.Errorf("%+v: %v, want %v", tc.bs, got, tc.want)
		}
	}
}

func TestParseEtcdMetricsRefusesOthers(t *testing.T) {
	if _, err := ParseEtcdMetrics("go_goroutines 5\n"); err == nil || !strings.Contains(err.Error(), "etcd member") {
		t.Fatalf("%v", err)
	}
	if _, err := ParseEtcdMetrics("not { valid"); err == nil {
		t.Fatal("garbage must be refused")
	}
}
