package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/probe"
	"github.com/fjord-net/fjord/internal/resolve"
)

// PeerProbe is how one peer answered.
type PeerProbe struct {
	Peer    string
	Addr    netip.Addr
	Small   probe.Result // 64 bytes, may fragment
	Full    probe.Result // the sender's underlay MTU, don't-fragment
	Size    int
	Overlay *probe.Result // 64 bytes to the peer's vxlan address (vxlan mode)
	Err     string
}

// probePeers pings every other node from n's namespace: a small packet, a full-size
// don't-fragment one, and a small one across the overlay.
func probePeers(n resolve.Node, nodes []resolve.Node, underlayMTU int, vxlan bool) []PeerProbe {
	var out []PeerProbe
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range nodes {
		if p.Name == n.Name || !p.IP.IsValid() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pp := PeerProbe{Peer: p.Name, Addr: p.IP, Size: underlayMTU}
			defer func() { mu.Lock(); out = append(out, pp); mu.Unlock() }()
			pg, err := probe.Open(n.Netns, p.IP.Is6(), netip.Addr{})
			if err != nil {
				pp.Err = err.Error()
				return
			}
			defer pg.Close()
			try := func(dst netip.Addr, size int, df bool) probe.Result {
				var r probe.Result
				for i := 0; i < 3; i++ { // a lost probe is retried: one loss is not an outage
					if r, err = pg.Ping(dst, size, df, 500*time.Millisecond); err != nil {
						return probe.Result{Outcome: probe.Unreachable}
					}
					if r.Outcome != probe.Lost {
						break
					}
				}
				return r
			}
			pp.Small = try(p.IP, 64, false)
			if pp.Size > 0 {
				pp.Full = try(p.IP, pp.Size, true)
			}
			if vxlan && p.PodCIDR.IsValid() {
				r := try(podnet.GatewayAddr(p.PodCIDR), 64, false)
				pp.Overlay = &r
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// judgePeers turns the probes into checks.
func judgePeers(c *checks, node string, probes []PeerProbe) {
	var ok []string
	for _, p := range probes {
		switch {
		case p.Err != "":
			c.add("peers", Warn, fmt.Sprintf("%s: could not probe: %s", p.Peer, p.Err), "")
		case p.Small.Outcome != probe.Reply:
			c.add("peers", Fail, fmt.Sprintf("%s (%v) does not answer on the underlay (%s): partitioned, down, or filtered", p.Peer, p.Addr, p.Small.Outcome),
				fmt.Sprintf("check the link and switch between %s and %s; fjord latency shows which pairs lose packets", node, p.Peer))
		case p.Size > 0 && p.Full.Outcome == probe.Lost:
			c.add("peers", Fail, fmt.Sprintf("%d-byte don't-fragment frames to %s vanish while small ones pass: an MTU black hole", p.Size, p.Peer),
				fmt.Sprintf("fjord mtu %s %s finds the size that works", node, p.Peer))
		case p.Size > 0 && p.Full.Outcome == probe.FragNeeded:
			c.add("peers", Warn, fmt.Sprintf("the path to %s only carries %d bytes (a hop says so), less than this node's %d", p.Peer, p.Full.MTU, p.Size),
				fmt.Sprintf("fjord mtu %s %s", node, p.Peer))
		case p.Overlay != nil && p.Overlay.Outcome != probe.Reply:
			c.add("peers", Fail, fmt.Sprintf("the overlay to %s fails (%s) while the underlay works: VXLAN (UDP 8472) blocked, or its route/neighbour/FDB entries are wrong", p.Peer, p.Overlay.Outcome),
				fmt.Sprintf("fjord trace %s %s", node, p.Peer))
		default:
			ok = append(ok, p.Peer)
		}
	}
	if len(ok) > 0 {
		what := "underlay (small and full-size frames)"
		if len(probes) > 0 && probes[0].Overlay != nil {
			what += " and overlay"
		}
		c.pass("peers", "%s answer on the %s", strings.Join(ok, ", "), what)
	}
}
