package doctor

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// EtcdTarget says how to reach the store's members.
type EtcdTarget struct {
	Endpoints []string
	// Fetch returns an endpoint's /metrics text.
	Fetch func(ctx context.Context, endpoint string) (string, error)
	// DataDir is a member's data directory on this machine, for a direct fdatasync
	// probe ("" when no member runs here).
	DataDir string
}

// etcd's guidance (docs: "tuning", "hardware"): WAL fsync p99 under 10 ms, backend
// commit p99 under 25 ms. Above the guidance doctor warns; it fails when fsync alone
// reaches the default heartbeat interval (100 ms), where heartbeats go late and
// followers start elections.
const (
	fsyncLimit   = 10 * time.Millisecond
	commitLimit  = 25 * time.Millisecond
	fsyncFailing = 100 * time.Millisecond
)

func checkEtcd(ctx context.Context, c *checks, t EtcdTarget) {
	// A member whose data lives in memory (the lab keeps its state on tmpfs) has no
	// disk to be slow: its fsync times are scheduling delay, not what etcd's guidance
	// is about.
	inMemory := t.DataDir != "" && onTmpfs(t.DataDir)
	for _, ep := range t.Endpoints {
		text, err := t.Fetch(ctx, ep)
		if err != nil {
			c.add("member", Fail, fmt.Sprintf("%s: /metrics unreachable: %v", ep, err), "is etcd running? (lab: fjord lab status)")
			continue
		}
		m, err := ParseEtcdMetrics(text)
		if err != nil {
			c.add("member", Fail, fmt.Sprintf("%s: %v", ep, err), "")
			continue
		}
		judgeEtcd(c, ep, m, inMemory)
	}
	if t.DataDir != "" {
		p99, n, err := fsyncProbe(t.DataDir, 100, 2*time.Second)
		switch {
		case err != nil:
			c.add("disk", Warn, fmt.Sprintf("fdatasync probe in %s failed: %v", t.DataDir, err), "")
		case inMemory:
			c.pass("disk", "%s is on tmpfs (memory): fdatasync p99 %v over %d writes is CPU scheduling, not a disk; a real member needs a disk with p99 under %v", t.DataDir, p99.Round(10*time.Microsecond), n, fsyncLimit)
		case p99 >= fsyncLimit:
			// The member's own WAL histogram (above) is the verdict; a synthetic burst of
			// fsyncs on a shared disk is a warning that its tail can get there.
			c.add("disk", Warn, fmt.Sprintf("fdatasync of 2300-byte writes in %s: p99 %v over %d writes, above the %v etcd needs: under load its WAL fsyncs will be this slow", t.DataDir, p99.Round(10*time.Microsecond), n, fsyncLimit),
				"give etcd's data directory a disk of its own (NVMe, no network storage)")
		default:
			c.pass("disk", "fdatasync of 2300-byte writes in %s: p99 %v over %d writes (etcd needs under %v)", t.DataDir, p99.Round(10*time.Microsecond), n, fsyncLimit)
		}
	}
}

// judgeEtcd checks one member's metrics.
func judgeEtcd(c *checks, ep string, m EtcdMetrics, inMemory bool) {
	if !m.HasLeader {
		c.add("member", Fail, ep+": no leader: the cluster cannot write", "check that a quorum of members runs and can reach each other")
	} else {
		c.pass("member", "%s has a leader", ep)
	}
	switch {
	case m.FsyncP99 < 0:
		c.add("fsync", Warn, ep+": no WAL fsync samples yet", "")
	case inMemory:
		c.pass("fsync", "%s: WAL on tmpfs (memory): fsync p99 %v over %d fsyncs measures scheduling, not a disk", ep, m.FsyncP99.Round(10*time.Microsecond), m.FsyncCount)
	case m.FsyncP99 >= fsyncFailing:
		c.add("fsync", Fail, fmt.Sprintf("%s: WAL fsync p99 %v over %d fsyncs, as long as a heartbeat interval (etcd's guidance: under %v): heartbeats go late and leaders change", ep, m.FsyncP99.Round(10*time.Microsecond), m.FsyncCount, fsyncLimit),
			"a faster disk for the WAL (--wal-dir on NVMe), nothing else writing to it")
	case m.FsyncP99 >= fsyncLimit:
		c.add("fsync", Warn, fmt.Sprintf("%s: WAL fsync p99 %v over %d fsyncs, above etcd's guidance of %v: under load (or a slower moment of a shared disk) heartbeats go late", ep, m.FsyncP99.Round(10*time.Microsecond), m.FsyncCount, fsyncLimit),
			"a faster disk for the WAL (--wal-dir on NVMe), nothing else writing to it")
	default:
		c.pass("fsync", "%s: WAL fsync p99 %v over %d fsyncs (under %v)", ep, m.FsyncP99.Round(10*time.Microsecond), m.FsyncCount, fsyncLimit)
	}
	if m.CommitP99 >= commitLimit && !inMemory {
		c.add("fsync", Warn, fmt.Sprintf("%s: backend commit p99 %v (etcd's guidance: under %v)", ep, m.CommitP99.Round(10*time.Microsecond), commitLimit), "a faster disk for the data directory")
	}
	if m.LeaderChanges > 1 {
		c.add("leader", Warn, fmt.Sprintf("%s has seen %.0f leader changes since it started: heartbeats are missed (slow fsync, CPU starvation or a flaky network)", ep, m.LeaderChanges),
			"look at fsync latency above and at cpu steal; raise --heartbeat-interval/--election-timeout only for high-latency links")
	} else {
		c.pass("leader", "%s: %.0f leader change(s) since it started", ep, m.LeaderChanges)
	}
	if m.Quota > 0 {
		pct := 100 * m.DBSize / m.Quota
		switch {
		case pct >= 95:
			c.add("db", Fail, fmt.Sprintf("%s: database %s of the %s quota (%.0f%%): at the quota etcd refuses writes (NOSPACE alarm)", ep, bytes(m.DBSize), bytes(m.Quota), pct),
				"compact and defragment (etcdctl compact, etcdctl defrag), or raise --quota-backend-bytes")
		case pct >= 80:
			c.add("db", Warn, fmt.Sprintf("%s: database %s of the %s quota (%.0f%%)", ep, bytes(m.DBSize), bytes(m.Quota), pct), "compact and defragment before it fills")
		default:
			c.pass("db", "%s: database %s (%s in use) of the %s quota", ep, bytes(m.DBSize), bytes(m.DBInUse), bytes(m.Quota))
		}
	}
}

func bytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", b/(1<<10))
}

// fsyncProbe writes 2300-byte blocks to a scratch file in dir, each followed by
// fdatasync (the size etcd's WAL writes and the etcd/fio recipe uses), at most n times
// or for at most budget, and returns the 99th percentile. The file is removed.
func fsyncProbe(dir string, n int, budget time.Duration) (time.Duration, int, error) {
	f, err := os.CreateTemp(dir, ".fjord-doctor-fsync-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 2300)
	var lat []time.Duration
	end := time.Now().Add(budget)
	for i := 0; i < n && time.Now().Before(end); i++ {
		if _, err := f.Write(block); err != nil {
			return 0, 0, err
		}
		t := time.Now()
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t))
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("no write finished within %v", budget)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[(len(lat)*99-1)/100], len(lat), nil
}

func onTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}
