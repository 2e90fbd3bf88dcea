package trace

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fjord-net/fjord/internal/nfnl"
	"github.com/fjord-net/fjord/internal/nftext"
)

// Observation is what the live probe showed in one place.
type Observation struct {
	Place string `json:"place"`
	In    string `json:"in,omitempty"`  // device the probe came in by
	Out   string `json:"out,omitempty"` // device it left by
	// VXLANIn and VXLANOut are the underlay devices the encapsulated probe came in or
	// left by.
	VXLANIn  string   `json:"vxlanIn,omitempty"`
	VXLANOut string   `json:"vxlanOut,omitempty"`
	Chains   []string `json:"chains,omitempty"`
	NAT      []string `json:"nat,omitempty"`
	Reply    bool     `json:"replySeen"` // the answer passed here
	Dropped  *Drop    `json:"dropped,omitempty"`
}

// Drop is where and why a probe packet was dropped.
type Drop struct {
	Place  string `json:"place"`
	By     string `json:"by"` // "nftables" or "kernel"
	Where  string `json:"where"`
	Reason string `json:"reason"`
	Reply  bool   `json:"reply"` // the answer, not the probe, was dropped
	Fix    string `json:"fix,omitempty"`
}

func (d Drop) String() string {
	dir := ""
	if d.Reply {
		dir = " (the reply)"
	}
	return fmt.Sprintf("DROPPED at %s/%s%s: %s", d.Place, d.Where, dir, d.Reason)
}

// placeEvents is one place's raw material.
type placeEvents struct {
	place  Place
	events []nfnl.TraceEvent
	chains []nftext.Chain    // listings of the chains the events name
	links  map[uint32]string // ifindex -> name
	dirs   map[uint64]int    // the trace table's rules -> direction
}

// observe turns one place's nftrace events into an Observation.
func observe(pe placeEvents, f Flow, vxlanPort uint16) Observation {
	o := Observation{Place: pe.place.Name}
	dirOf := map[uint32]int{}    // per trace id: the last known direction
	encapOf := map[uint32]bool{} // per trace id: whether the last header seen was VXLAN
	firstDst := map[uint32]string{}
	firstSrc := map[uint32]string{}
	seenChain := map[string]bool{}
	for _, e := range pe.events {
		ours := strings.HasPrefix(e.Table, tablePrefix)
		dir := NotOurs
		var pkt Packet
		parsed := false
		if len(e.Network) > 0 {
			pkt, parsed = ParseIPv4(e.Network, e.Transport, vxlanPort)
		}
		switch {
		case ours && pe.dirs[e.RuleHandle] != NotOurs:
			dir = pe.dirs[e.RuleHandle] // the rule that marked it says which way
		case parsed && f.Match(pkt) != NotOurs:
			dir = f.Match(pkt)
		default:
			dir = dirOf[e.ID] // a later event of a packet already recognised
		}
		if dir == NotOurs {
			continue
		}
		dirOf[e.ID] = dir
		if dir == Reply {
			o.Reply = true
		}
		encap := encapOf[e.ID]
		if parsed {
			encap = pkt.Proto == "udp" && vxlanPort != 0 && pkt.DPort == vxlanPort
			encapOf[e.ID] = encap
		}
		if dir == Forward {
			switch {
			case !encap:
				if e.IIF != 0 && o.In == "" {
					o.In = pe.links[e.IIF]
				}
				if e.OIF != 0 {
					o.Out = pe.links[e.OIF]
				}
			case o.In == "" && o.Out == "": // arrives encapsulated
				if e.IIF != 0 && o.VXLANIn == "" {
					o.VXLANIn = pe.links[e.IIF]
				}
			default: // leaves encapsulated
				if e.OIF != 0 {
					o.VXLANOut = pe.links[e.OIF]
				}
			}
		}
		if ours {
			continue
		}
		if dir == Forward && !encap {
			if parsed && f.Match(pkt) == Forward && pkt.Inner == nil {
				dst := fmt.Sprintf("%v:%d", pkt.Dst, pkt.DPort)
				src := fmt.Sprintf("%v:%d", pkt.Src, pkt.SPort)
				if f.Proto == "icmp" {
					dst, src = pkt.Dst.String(), pkt.Src.String()
				}
				if firstDst[e.ID] == "" {
					firstDst[e.ID], firstSrc[e.ID] = dst, src
				} else if firstDst[e.ID] != dst {
					o.NAT = appendOnce(o.NAT, fmt.Sprintf("DNAT %s → %s", firstDst[e.ID], dst))
					firstDst[e.ID] = dst
				} else if firstSrc[e.ID] != src {
					o.NAT = appendOnce(o.NAT, fmt.Sprintf("SNAT %s → %s", firstSrc[e.ID], src))
					firstSrc[e.ID] = src
				}
			}
			key := familyName(e.Family) + " " + e.Table + " " + e.Chain
			if e.Table == "fjord" && e.Chain == "mark-for-masquerade" {
				o.NAT = appendOnce(o.NAT, "masquerade (fully random: the next hops see the node's address and another port, so the trace follows the reply instead)")
			}
			if !seenChain[key] {
				seenChain[key] = true
				o.Chains = append(o.Chains, key)
			}
		}
		dropped := (e.Type == nfnl.TraceRule && e.Verdict.Drops()) || (e.Type == nfnl.TracePolicy && e.Verdict.Drops())
		if dropped && o.Dropped == nil {
			o.Dropped = nftDrop(pe, e, dir == Reply)
		}
	}
	return o
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// nftDrop describes a drop verdict.
func nftDrop(pe placeEvents, e nfnl.TraceEvent, reply bool) *Drop {
	fam := familyName(e.Family)
	d := &Drop{Place: pe.place.Name, By: "nftables", Reply: reply}
	if e.Type == nfnl.TracePolicy {
		d.Where = fmt.Sprintf("nftables %s %s %s", fam, e.Table, e.Chain)
		d.Reason = "the chain's policy is drop and no rule accepted the packet"
		d.Fix = fmt.Sprintf("add a rule accepting this flow to %s %s %s, or change its policy (in %s)", fam, e.Table, e.Chain, pe.place.Name)
		return d
	}
	rule, ok := nftext.Find(pe.chains, fam, e.Table, e.Chain, e.RuleHandle)
	text := fmt.Sprintf("rule handle %d", e.RuleHandle)
	if ok {
		text = fmt.Sprintf("%s (handle %d)", rule.Text, e.RuleHandle)
	}
	d.Where = fmt.Sprintf("nftables %s %s %s", fam, e.Table, e.Chain)
	d.Reason = text
	if fam == "ip" && e.Table == "fjord" {
		d.Reason += ": fjord's service proxy rejects it (a Service without endpoints, or a port the Service does not have)"
		d.Fix = "give the Service ready endpoints (its selector must match Ready pods: fjord get endpointslices), or use one of its ports"
		return d
	}
	d.Fix = fmt.Sprintf("this rule is not fjord's: delete it (nft delete rule %s %s %s handle %d, in %s) or accept the flow before it", fam, e.Table, e.Chain, e.RuleHandle, pe.place.Name)
	return d
}

// silentDrops are kernel functions that free packets without a reason code, and why
// they do it.
var silentDrops = map[string]string{
	"br_dev_queue_push_xmit": "the frame is bigger than the switch port's MTU (a bridge drops it without a word)",
	"__dev_forward_skb":      "the frame is bigger than the receiving interface's MTU",
	"__dev_forward_skb2":     "the frame is bigger than the receiving interface's MTU",
	"dev_forward_skb":        "the frame is bigger than the receiving interface's MTU",
	"veth_xmit":              "the frame is bigger than the veth peer's MTU",
	"ip_fragment":            "the packet is too big for the next hop and may not be fragmented",
	"ip_do_fragment":         "the packet is too big for the next hop and may not be fragmented",
}

// kernelDrop describes a kfree_skb drop of a size-byte packet.
func kernelDrop(place string, dev string, reason, fn string, reply bool, size int) *Drop {
	d := &Drop{Place: place, By: "kernel", Reply: reply, Where: "kernel " + fn, Reason: reason}
	if dev != "" {
		d.Where += " on " + dev
	}
	if why, ok := silentDrops[fn]; ok && (reason == "NOT_SPECIFIED" || reason == "") {
		d.Reason = fmt.Sprintf("%s (%d-byte packet)", why, size)
		d.Fix = "fjord mtu finds the size that works and which node to fix"
		return d
	}
	r := reason
	switch {
	case r == "NO_SOCKET" || strings.HasPrefix(r, "TCP_CLOSE"):
		d.Reason += ": nothing listens on that port"
		d.Fix = "start the server, or fix the Service's targetPort (fjord exec POD -- ss -ltnu shows what listens)"
	case strings.Contains(r, "PKT_TOO_BIG") || strings.Contains(r, "FRAG") || strings.Contains(r, "MTU"):
		d.Reason += ": the packet is bigger than the path allows"
		d.Fix = "fjord mtu finds the size that works and which node to fix"
	case strings.Contains(r, "RPFILTER"):
		d.Reason += ": reverse-path filtering (the route back does not leave by the interface it came in)"
		d.Fix = "net.ipv4.conf.all.rp_filter=2 (loose) in " + place + ", or make the routes symmetric"
	case strings.Contains(r, "NOROUTE") || strings.Contains(r, "UNREACHABLE") || strings.Contains(r, "INADDRERRORS"):
		d.Reason += ": no route"
		d.Fix = "fjord doctor --node " + place + " (the agent's routes) or check the destination exists"
	case strings.Contains(r, "NEIGH"):
		d.Reason += ": the next hop does not answer ARP"
		d.Fix = "is the next hop up? (fjord doctor: peers)"
	case strings.Contains(r, "NETFILTER"):
		d.Reason += ": a netfilter rule (iptables or nftables without tracing) dropped it"
		d.Fix = "iptables-save / nft list ruleset in " + place
	case r == "NOT_SPECIFIED" || r == "":
		d.Reason = "the kernel dropped it without a reason code"
	}
	return d
}

// Verdict is a trace's conclusion.
type Verdict struct {
	Outcome string `json:"outcome"` // DELIVERED, DROPPED, REFUSED, UNREACHABLE, LOST, SENT
	Text    string `json:"text"`
	Fix     string `json:"fix,omitempty"`
}

// ProbeResult is what the probe itself saw from the source.
type ProbeResult struct {
	Answered bool          // a reply came back (TCP SYN-ACK, ICMP echo reply, UDP answer)
	Refused  bool          // TCP RST / ICMP port unreachable
	Error    string        // ICMP or socket error, if any
	RTT      time.Duration // when answered
	At       time.Time     // when the answer (or the error) came
}

// conclude picks the verdict from the probe's own result, the observations and the
// kernel drops, in that order of trust.
func conclude(f Flow, pr ProbeResult, obs []Observation, drops []*Drop, dst string) Verdict {
	firstDrop := func(reply bool) *Drop {
		for _, o := range obs {
			if o.Dropped != nil && o.Dropped.Reply == reply {
				return o.Dropped
			}
		}
		for _, d := range drops {
			if d.Reply == reply {
				return d
			}
		}
		return nil
	}
	if pr.Answered {
		return Verdict{Outcome: "DELIVERED", Text: fmt.Sprintf("DELIVERED to %s (answered in %v)", dst, pr.RTT.Round(10*time.Microsecond))}
	}
	if d := firstDrop(false); d != nil {
		return Verdict{Outcome: "DROPPED", Text: d.String(), Fix: d.Fix}
	}
	if pr.Refused {
		return Verdict{Outcome: "REFUSED", Text: fmt.Sprintf("REFUSED by %s: %s", dst, orDefault(pr.Error, "connection refused (nothing listens, or a firewall rejects)")),
			Fix: "is the server listening on that port? (fjord exec POD -- ss -ltnu)"}
	}
	if d := firstDrop(true); d != nil {
		return Verdict{Outcome: "DROPPED", Text: d.String(), Fix: d.Fix}
	}
	if pr.Error != "" {
		return Verdict{Outcome: "UNREACHABLE", Text: "UNREACHABLE: " + pr.Error}
	}
	if f.Proto == "udp" {
		return Verdict{Outcome: "SENT", Text: "SENT: no drop was seen and no answer came (UDP servers need not answer)" + lastSeen(obs)}
	}
	return Verdict{Outcome: "LOST", Text: "LOST: no answer and no drop recorded in any namespace this machine watches" + lastSeen(obs),
		Fix: "the loss is outside the watched namespaces (a partitioned or down node, a switch, a black hole): fjord doctor and fjord latency"}
}

func lastSeen(obs []Observation) string {
	for i := len(obs) - 1; i >= 0; i-- {
		if len(obs[i].Chains) > 0 || obs[i].In != "" || obs[i].Out != "" {
			s := "; last seen in " + obs[i].Place
			if obs[i].Out != "" {
				s += " leaving by " + obs[i].Out
			}
			return s
		}
	}
	return ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// orderObservations puts places in path order (those of the expected path first).
func orderObservations(obs []Observation, order []string) []Observation {
	rank := map[string]int{}
	for i, p := range order {
		if _, ok := rank[p]; !ok {
			rank[p] = i
		}
	}
	sort.SliceStable(obs, func(i, j int) bool {
		ri, oki := rank[obs[i].Place]
		rj, okj := rank[obs[j].Place]
		if oki != okj {
			return oki
		}
		return ri < rj
	})
	return obs
}
