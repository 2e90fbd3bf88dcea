package trace

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/nfnl"
	"github.com/fjord-net/fjord/internal/nftext"
)

// Place is a network namespace the trace watches.
type Place struct {
	Name  string `json:"name"` // "n1", "pod default/echo-n1", "underlay switch"
	Node  string `json:"node,omitempty"`
	Netns string `json:"-"`
	// Bridge places (a lab's underlay switch) are traced in the bridge family.
	Bridge bool `json:"-"`
}

// tablePrefix names every table a trace adds; the PID after it lets a later trace
// remove the table of one that was killed before it could clean up.
const tablePrefix = "fjord_trace_"

// TraceTable is the table this process's traces use.
func TraceTable() string { return tablePrefix + strconv.Itoa(os.Getpid()) }

// watched is one instrumented place.
type watched struct {
	place  Place
	family knftables.Family
	conn   *nfnl.Conn
	inum   uint32
	links  map[uint32]string // ifindex -> name
	dirs   map[uint64]int    // our rules' handles -> direction

	mu     sync.Mutex
	events []nfnl.TraceEvent
	err    error
	done   chan struct{}
}

// instrument adds the trace table to every place and starts reading its nftrace
// events. On failure everything added so far is removed.
func instrument(places []Place, f Flow, vxlanPort uint16) ([]*watched, func() error, error) {
	var ws []*watched
	cleanup := func() error {
		var errs []string
		for _, w := range ws {
			if w.conn != nil {
				w.conn.Close()
				<-w.done
			}
			if err := removeTable(w.place.Netns, w.family, TraceTable()); err != nil {
				errs = append(errs, w.place.Name+": "+err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("trace cleanup: %s", strings.Join(errs, "; "))
		}
		return nil
	}
	for _, p := range places {
		w := &watched{place: p, family: knftables.InetFamily, links: map[uint32]string{}, done: make(chan struct{})}
		if p.Bridge {
			w.family = knftables.BridgeFamily
		}
		removeOrphans(p.Netns)
		if fi, err := os.Stat(nsPath(p.Netns)); err == nil {
			w.inum = uint32(fi.Sys().(*syscall.Stat_t).Ino)
		}
		ws = append(ws, w)
		err := inns.Do(p.Netns, func() error {
			links, err := netlink.LinkList()
			if err != nil {
				return err
			}
			for _, l := range links {
				w.links[uint32(l.Attrs().Index)] = l.Attrs().Name
			}
			if w.conn, err = nfnl.DialTrace(); err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		go w.read()
		err = inns.NFT(p.Netns, w.family, TraceTable(), func(tx *knftables.Transaction) {
			tx.Add(&knftables.Table{Comment: knftables.PtrTo("fjord trace (removed when the trace ends)")})
			for _, c := range []struct {
				name string
				hook knftables.BaseChainHook
			}{{"pre", knftables.PreroutingHook}, {"out", knftables.OutputHook}} {
				if p.Bridge && c.hook == knftables.OutputHook {
					continue
				}
				// Before everything (raw is -300, conntrack -200), so every other table's
				// chains see the packet marked.
				tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(c.hook),
					Priority: knftables.PtrTo(knftables.BaseChainPriority("-350"))})
				for _, r := range f.traceRules(vxlanPort) {
					tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
				}
			}
		})
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("%s: add trace table: %w", p.Name, err)
		}
		listing, err := inns.NFTList(p.Netns, "-a", "list", "table", string(w.family), TraceTable())
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("%s: list trace table: %w", p.Name, err)
		}
		w.dirs = ruleDirections(listing)
	}
	return ws, cleanup, nil
}

func nsPath(p string) string {
	if p == "" {
		return "/proc/self/ns/net"
	}
	return p
}

func (w *watched) read() {
	defer close(w.done)
	for {
		evs, err := w.conn.ReadTrace(200 * time.Millisecond)
		w.mu.Lock()
		w.events = append(w.events, evs...)
		if err != nil && !strings.Contains(err.Error(), "bad file descriptor") {
			w.err = err
		}
		w.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (w *watched) snapshot() ([]nfnl.TraceEvent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]nfnl.TraceEvent(nil), w.events...), w.err
}

// removeTable deletes a trace table; one that is gone already is fine.
func removeTable(ns string, family knftables.Family, table string) error {
	err := inns.NFT(ns, family, table, func(tx *knftables.Transaction) { tx.Delete(&knftables.Table{}) })
	if err != nil && knftables.IsNotFound(err) {
		return nil
	}
	return err
}

// removeOrphans deletes trace tables left by traces whose process is gone.
func removeOrphans(ns string) {
	out, err := inns.NFTList(ns, "list", "tables")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[2], tablePrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[2], tablePrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = removeTable(ns, knftables.Family(f[1]), f[2])
		}
	}
}

// TablesLeft lists trace tables in a namespace (tests check that none remain).
func TablesLeft(ns string) ([]string, error) {
	out, err := inns.NFTList(ns, "list", "tables")
	if err != nil {
		return nil, err
	}
	var left []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], tablePrefix) {
			left = append(left, f[1]+" "+f[2])
		}
	}
	return left, nil
}

// ruleTexts lists the chains named in events the way nft prints them (rules with
// their handles), one chain at a time: fjord's own table can be huge.
func ruleTexts(ns string, events []nfnl.TraceEvent) []nftext.Chain {
	seen := map[string]bool{}
	var out []nftext.Chain
	for _, e := range events {
		fam := familyName(e.Family)
		key := fam + " " + e.Table + " " + e.Chain
		if seen[key] || strings.HasPrefix(e.Table, tablePrefix) || e.RuleHandle == 0 {
			continue
		}
		seen[key] = true
		if listing, err := inns.NFTList(ns, "-a", "list", "chain", fam, e.Table, e.Chain); err == nil {
			out = append(out, nftext.Parse(listing)...)
		}
	}
	return out
}

func familyName(f uint8) string {
	switch f {
	case 1:
		return "inet"
	case 2:
		return "ip"
	case 3:
		return "arp"
	case 5:
		return "netdev"
	case 7:
		return "bridge"
	case 10:
		return "ip6"
	}
	return strconv.Itoa(int(f))
}
