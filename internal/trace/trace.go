// Package trace answers "where did my packet die?": it follows one flow from a source
// pod or node to a destination (a pod, a Service, a NodePort, an ingress URL) and says,
// hop by hop, which namespace, device and decision it met, ending in DELIVERED or
// DROPPED at <node>/<place>: <reason>, with the fix when one is known.
//
// Two halves. The expected path is read from kernel state in every namespace on the
// way: routes, neighbours, FDB entries, the vxlan device, the service proxy's maps and
// chains (which endpoints, which dispatch), listeners. The live probe sends one real
// packet from the source's namespace after adding, in every namespace this machine can
// enter, a table that sets nftrace on that flow's packets (plain and inside VXLAN); the
// trace events, read over netlink as `nft monitor trace` does, give every chain and
// rule verdict, in every table, including tables fjord does not own. Drops outside
// netfilter come from the skb:kfree_skb tracepoint through a small BPF program (this
// kernel has no kprobes). Everything the trace adds is removed when it ends.
package trace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/fjord-net/fjord/internal/inns"
	"github.com/fjord-net/fjord/internal/nfnl"
	"github.com/fjord-net/fjord/internal/nftext"
	"github.com/fjord-net/fjord/internal/probe"
	"github.com/fjord-net/fjord/internal/resolve"
)

// Request is one trace.
type Request struct {
	Source Source
	Target Target
	Nodes  []resolve.Node
	Pods   []resolve.Pod
	// Extra are more places to watch (a lab's underlay switch).
	Extra []Place
	// VXLANPort is the pod network's VXLAN port (0 = no VXLAN).
	VXLANPort uint16
	// Probe sends the live probe (false: the expected path only).
	Probe bool
	// Timeout for the probe's answer (default 2s); Size of ICMP/UDP probes (0 small;
	// ICMP probes with a size are sent with don't-fragment).
	Timeout time.Duration
	Size    int
	// Dump, if set, receives the raw material of the live probe (for bug reports and
	// for replaying in tests).
	Dump func(Recording)
}

// Recording is the raw material of one live probe: what each place's nftables trace
// said, and the probe's own result.
type Recording struct {
	Flow      Flow            `json:"flow"`
	VXLANPort uint16          `json:"vxlanPort"`
	Places    []RecordedPlace `json:"places"`
	Probe     ProbeResult     `json:"probe"`
}

// RecordedPlace is one place's events and what is needed to read them.
type RecordedPlace struct {
	Place  Place             `json:"place"`
	Events []nfnl.TraceEvent `json:"events"`
	Chains []nftext.Chain    `json:"chains"`
	Links  map[uint32]string `json:"links"`
	Dirs   map[uint64]int    `json:"dirs"`
}

// Replay explains a recording as Run would have (without kernel drops).
func Replay(r Recording) ([]Observation, Verdict) {
	var obs []Observation
	for _, p := range r.Places {
		obs = append(obs, observe(placeEvents{place: p.Place, events: p.Events, chains: p.Chains, links: p.Links, dirs: p.Dirs}, r.Flow, r.VXLANPort))
	}
	return obs, conclude(r.Flow, r.Probe, obs, nil, r.Flow.Dst.String())
}

// Result is a trace's report.
type Result struct {
	Source      string        `json:"source"`
	Target      string        `json:"target"`
	Flow        Flow          `json:"flow"`
	Expected    []Step        `json:"expected"`
	Observed    []Observation `json:"observed,omitempty"`
	KernelDrops []Drop        `json:"kernelDrops,omitempty"`
	Notes       []string      `json:"notes,omitempty"`
	Verdict     Verdict       `json:"verdict"`
}

// Run traces the request.
func Run(ctx context.Context, req Request) (Result, error) {
	if req.Timeout <= 0 {
		req.Timeout = 2 * time.Second
	}
	t := req.Target
	res := Result{Source: fmt.Sprintf("%s (%v)", req.Source.Name, req.Source.IP), Target: fmt.Sprintf("%s (%s %v)", t.Name, t.Proto, t.Addr)}
	if t.Proto == "icmp" {
		res.Target = fmt.Sprintf("%s (icmp %v)", t.Name, t.Addr.Addr())
	}
	w := world{nodes: req.Nodes, pods: req.Pods}
	var prefer netip.AddrPort
	if req.Probe {
		flow, pinger, err := pickFlow(req)
		if err != nil {
			return res, err
		}
		res.Flow = flow
		obs, drops, pr, notes, err := live(ctx, req, flow, pinger)
		if err != nil {
			return res, err
		}
		res.Notes = notes
		res.Observed = obs
		for _, d := range drops {
			res.KernelDrops = append(res.KernelDrops, *d)
		}
		prefer = dnatTarget(obs)
		res.Expected = expectedPath(w, req, prefer)
		res.Observed = orderObservations(res.Observed, stepPlaces(res.Expected))
		res.Verdict = conclude(flow, pr, res.Observed, drops, t.Name)
		res.Verdict = withServiceCause(res.Verdict, res.Expected, t)
	} else {
		res.Expected = expectedPath(w, req, prefer)
		res.Verdict = fromExpected(res.Expected, t.Name)
	}
	if res.Verdict.Outcome != "DELIVERED" && res.Verdict.Fix == "" {
		for _, s := range res.Expected {
			if s.Problem != "" {
				res.Verdict.Fix = s.Problem + ": " + s.Fix
				break
			}
		}
	}
	return res, nil
}

func stepPlaces(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Place)
	}
	return out
}

// withServiceCause names the Service when fjord's own proxy rejected the probe because
// the expected path found it without endpoints.
func withServiceCause(v Verdict, steps []Step, t Target) Verdict {
	if v.Outcome != "DROPPED" || !strings.Contains(v.Text, "/nftables ip fjord ") || t.Service == nil {
		return v
	}
	for _, s := range steps {
		if strings.Contains(s.Problem, "no endpoints") {
			at, _, _ := strings.Cut(strings.TrimPrefix(v.Text, "DROPPED at "), ":")
			return Verdict{Outcome: v.Outcome, Fix: s.Fix,
				Text: fmt.Sprintf("DROPPED at %s: service %s/%s has no endpoints, so fjord's proxy rejects the connection", at, t.Service.Namespace, t.Service.Name)}
		}
	}
	return v
}

// fromExpected concludes from kernel state alone.
func fromExpected(steps []Step, dst string) Verdict {
	for _, s := range steps {
		if s.Problem != "" {
			return Verdict{Outcome: "DROPPED", Text: fmt.Sprintf("DROPPED at %s: %s", s.Place, s.Problem), Fix: s.Fix}
		}
	}
	return Verdict{Outcome: "EXPECTED", Text: "kernel state delivers it to " + dst + " (no probe sent)"}
}

// dnatTarget is the endpoint the probe's DNAT picked, if seen.
func dnatTarget(obs []Observation) netip.AddrPort {
	for _, o := range obs {
		for _, n := range o.NAT {
			if rest, ok := strings.CutPrefix(n, "DNAT "); ok {
				if _, to, ok := strings.Cut(rest, " → "); ok {
					if ap, err := netip.ParseAddrPort(to); err == nil {
						return ap
					}
				}
			}
		}
	}
	return netip.AddrPort{}
}

// pickFlow chooses the probe's identity: a free source port, or a pinger's echo id.
func pickFlow(req Request) (Flow, *probe.Pinger, error) {
	t := req.Target
	f := Flow{Proto: t.Proto, Src: req.Source.IP, Dst: t.Addr, Size: req.Size}
	if t.Proto == "icmp" {
		p, err := probe.Open(req.Source.Netns, t.Addr.Addr().Is6(), netip.Addr{})
		if err != nil {
			return f, nil, err
		}
		f.ID = p.ID()
		f.Dst = netip.AddrPortFrom(t.Addr.Addr(), 0)
		return f, p, nil
	}
	if t.Addr.Port() == 0 {
		return f, nil, fmt.Errorf("DST %s: %s needs a port (--port)", t.Name, t.Proto)
	}
	for try := 0; try < 20; try++ {
		port := uint16(40000 + rand.IntN(20000))
		free := inns.Do(req.Source.Netns, func() error {
			network := "tcp"
			if t.Proto == "udp" {
				network = "udp"
			}
			if network == "tcp" {
				l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
				if err != nil {
					return err
				}
				return l.Close()
			}
			c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
			if err != nil {
				return err
			}
			return c.Close()
		})
		if free == nil {
			f.ID = port
			return f, nil, nil
		}
	}
	return f, nil, errors.New("no free source port for the probe")
}

// live instruments, sends the probe, collects, and cleans up.
func live(ctx context.Context, req Request, f Flow, pinger *probe.Pinger) ([]Observation, []*Drop, ProbeResult, []string, error) {
	var notes []string
	places := watchPlaces(req)
	drops, err := WatchDrops(Match{Port: f.ID, ICMPID: f.ID, VXLANPort: req.VXLANPort})
	if err != nil {
		notes = append(notes, "kernel drop reasons unavailable (skb:kfree_skb via BPF): "+err.Error())
		drops = nil
	}
	ws, cleanup, err := instrument(places, f, req.VXLANPort)
	if err != nil {
		if drops != nil {
			drops.Close()
		}
		if pinger != nil {
			pinger.Close()
		}
		return nil, nil, ProbeResult{}, nil, err
	}
	pr := send(ctx, req, f, pinger)
	time.Sleep(300 * time.Millisecond) // late events (the reply, retransmissions)
	var obs []Observation
	byInum := map[uint32]*watched{}
	rec := Recording{Flow: f, VXLANPort: req.VXLANPort, Probe: pr}
	for _, w := range ws {
		byInum[w.inum] = w
		evs, err := w.snapshot()
		if err != nil {
			notes = append(notes, w.place.Name+": "+err.Error())
		}
		pe := placeEvents{place: w.place, events: evs, links: w.links, dirs: w.dirs, chains: ruleTexts(w.place.Netns, evs)}
		obs = append(obs, observe(pe, f, req.VXLANPort))
		rec.Places = append(rec.Places, RecordedPlace{Place: w.place, Events: evs, Chains: pe.chains, Links: w.links, Dirs: w.dirs})
	}
	if req.Dump != nil {
		req.Dump(rec)
	}
	var kdrops []*Drop
	if drops != nil {
		srcPlace := req.Source.Node.Name
		if req.Source.Pod != nil {
			srcPlace = podPlace(*req.Source.Pod)
		}
		kdrops = kernelDrops(drops, byInum, obs, f, req.VXLANPort, pr, srcPlace)
		if err := drops.Close(); err != nil {
			notes = append(notes, "detach BPF: "+err.Error())
		}
	}
	if err := cleanup(); err != nil {
		return obs, kdrops, pr, notes, err
	}
	return obs, kdrops, pr, notes, nil
}

// watchPlaces is every namespace the trace instruments: each node this machine can
// enter, the source and destination pods, the Service's endpoint pods, and extras.
func watchPlaces(req Request) []Place {
	var out []Place
	seen := map[string]bool{}
	add := func(p Place) {
		if !seen[p.Netns] {
			seen[p.Netns] = true
			out = append(out, p)
		}
	}
	if req.Source.Pod != nil {
		add(Place{Name: podPlace(*req.Source.Pod), Node: req.Source.Pod.Node, Netns: req.Source.Netns})
	}
	for _, n := range req.Nodes {
		if n.Here {
			add(Place{Name: n.Name, Node: n.Name, Netns: n.Netns})
		}
	}
	endpoints := map[netip.Addr]bool{req.Target.Addr.Addr(): true}
	if sp := req.Target.Service; sp != nil {
		for _, e := range sp.Endpoints {
			endpoints[e.IP] = true
		}
	}
	if in := req.Target.Ingress; in != nil {
		for _, e := range in.Service.Endpoints {
			endpoints[e.IP] = true
		}
	}
	for _, p := range req.Pods {
		if endpoints[p.IP] && p.Netns != "" {
			add(Place{Name: podPlace(p), Node: p.Node, Netns: p.Netns})
		}
	}
	for _, p := range req.Extra {
		add(p)
	}
	return out
}

// send sends the probe from the source's namespace and waits for the answer.
func send(ctx context.Context, req Request, f Flow, pinger *probe.Pinger) ProbeResult {
	var pr ProbeResult
	switch f.Proto {
	case "icmp":
		defer pinger.Close()
		size := f.Size
		if size == 0 {
			size = 84
		}
		start := time.Now()
		r, err := pinger.Ping(f.Dst.Addr(), size, f.Size > 0, req.Timeout)
		switch {
		case err != nil:
			pr.Error = err.Error()
		case r.Outcome == probe.Reply:
			pr.Answered, pr.RTT, pr.At = true, time.Since(start), time.Now()
		case r.Outcome == probe.Lost:
		default:
			pr.Error = fmt.Sprintf("%s (from %v)", r.Outcome, r.From)
			if r.Outcome == probe.FragNeeded || r.Outcome == probe.LocalTooBig {
				pr.Error += fmt.Sprintf(", MTU %d", r.MTU)
			}
		}
	case "tcp":
		_ = inns.Do(req.Source.Netns, func() error {
			d := net.Dialer{Timeout: req.Timeout, LocalAddr: &net.TCPAddr{IP: f.Src.AsSlice(), Port: int(f.ID)}}
			start := time.Now()
			c, err := d.DialContext(ctx, "tcp", f.Dst.String())
			switch {
			case err == nil:
				pr.Answered, pr.RTT, pr.At = true, time.Since(start), time.Now()
				c.Close()
			case errors.Is(err, syscall.ECONNREFUSED):
				pr.Refused = true
			case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
				pr.Error = err.Error()
			}
			return nil
		})
	case "udp":
		_ = inns.Do(req.Source.Netns, func() error {
			c, err := net.DialUDP("udp", &net.UDPAddr{IP: f.Src.AsSlice(), Port: int(f.ID)}, net.UDPAddrFromAddrPort(f.Dst))
			if err != nil {
				pr.Error = err.Error()
				return nil
			}
			defer c.Close()
			payload := []byte("fjord trace\n")
			if f.Size > 28 {
				payload = make([]byte, f.Size-28)
			}
			start := time.Now()
			if _, err := c.Write(payload); err != nil {
				pr.Error = err.Error()
				return nil
			}
			_ = c.SetReadDeadline(time.Now().Add(req.Timeout))
			buf := make([]byte, 2048)
			_, err = c.Read(buf)
			switch {
			case err == nil:
				pr.Answered, pr.RTT, pr.At = true, time.Since(start), time.Now()
			case errors.Is(err, syscall.ECONNREFUSED):
				pr.Refused, pr.Error = true, "ICMP port unreachable"
			}
			return nil
		})
	}
	if pr.At.IsZero() {
		pr.At = time.Now()
	}
	return pr
}

// kernelDrops reads the BPF program's drop events.
func kernelDrops(dw *DropWatcher, byInum map[uint32]*watched, obs []Observation, f Flow, vx uint16, pr ProbeResult, srcPlace string) []*Drop {
	events := dw.Events()
	if len(events) == 0 {
		return nil
	}
	var syms *Symbols
	if fh, err := os.Open("/proc/kallsyms"); err == nil {
		syms, _ = ParseKallsyms(fh)
		fh.Close()
	}
	nftDropIn := map[string]bool{}
	for _, o := range obs {
		if o.Dropped != nil {
			nftDropIn[o.Place] = true
		}
	}
	var out []*Drop
	seen := map[string]bool{}
	for _, e := range events {
		pkt, ok := ParseIPv4(e.Packet, nil, vx)
		dir := f.Match(pkt)
		if !ok || dir == NotOurs {
			continue
		}
		reason := dw.ReasonName(e.Reason)
		place, dev := fmt.Sprintf("a namespace this trace does not watch (inode %d)", e.NetnsInum), ""
		if e.NetnsInum == 0 {
			place = "an unknown namespace (the packet had no device)"
		}
		if w := byInum[e.NetnsInum]; w != nil {
			place, dev = w.place.Name, w.links[e.Ifindex]
		}
		if reason == "NETFILTER_DROP" && nftDropIn[place] {
			continue // already named by nftables' trace
		}
		if pr.Answered && (!e.Time.Before(pr.At) || dir == Reply && place == srcPlace) {
			// After the answer: the connection's teardown; a reply the source got
			// anyway (raw ICMP sockets see replies no ping socket claims): no loss.
			continue
		}
		fn := syms.Function(e.Location)
		if fn == "" {
			fn = fmt.Sprintf("%#x", e.Location)
		}
		key := place + reason + fn
		if seen[key] {
			continue
		}
		seen[key] = true
		size := pkt.Len
		if pkt.Inner != nil {
			size = pkt.Len // the frame on the wire is the outer packet
		}
		out = append(out, kernelDrop(place, dev, reason, fn, dir == Reply, size))
	}
	return out
}
