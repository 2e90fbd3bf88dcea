// Package bgp is the agent's BGP speaker (bgp mode): it decides, as plain data, whom a
// node peers with and what it advertises (Resolve: from Nodes, BGPConfiguration and
// BGPPeer objects and the agent's flags), runs GoBGP as a library to do it (Speaker:
// changes applied as a diff of peers and paths), reports the best paths it learned for
// podnet.PlanBGP to turn into kernel routes, and serves its sessions' state on a unix
// socket for `fjord bgp status`.
package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/fjord-net/fjord/internal/objects"
)

// Defaults, as Calico's where it has them.
const (
	DefaultASNumber    uint32 = 64512
	DefaultPort        uint16 = 179
	DefaultRestartTime        = 120 * time.Second
	DefaultHoldTime           = 9 * time.Second
)

// Node is what Resolve needs of one Node.
type Node struct {
	Name   string
	IP     netip.Addr // underlay address; invalid = not yet known
	AS     uint32     // from its fjord.dev/bgp-as-number annotation; 0 = the default
	Labels map[string]string
}

// Flags are the agent's own BGP settings; they add to the objects.
type Flags struct {
	// Peers are routers to peer with besides those of BGPPeer objects (--bgp-peer).
	Peers []FlagPeer
	// Advertise are ranges to advertise besides the BGPConfiguration's (the service
	// CIDR with --bgp-advertise-service-cidr).
	Advertise []netip.Prefix
}

// FlagPeer is one --bgp-peer IP[:port]/AS.
type FlagPeer struct {
	Addr netip.Addr
	Port uint16
	AS   uint32
}

// ParseFlagPeer reads "198.18.190.254/65000" or "198.18.190.254:1179/65000".
func ParseFlagPeer(s string) (FlagPeer, error) {
	addr, as, ok := strings.Cut(s, "/")
	if !ok {
		return FlagPeer{}, fmt.Errorf("%q: want IP[:port]/AS, e.g. 198.18.190.254/65000", s)
	}
	a, port, err := objects.ParsePeerIP(addr)
	if err != nil {
		return FlagPeer{}, fmt.Errorf("%q: %w", s, err)
	}
	n, err := objects.ParseASNumber(as)
	if err != nil {
		return FlagPeer{}, fmt.Errorf("%q: %w", s, err)
	}
	return FlagPeer{Addr: a, Port: port, AS: n}, nil
}

// Config is everything the speaker of one node should be: the desired state Speaker.Set
// makes real.
type Config struct {
	RouterID   netip.Addr // the node's IPv4 underlay address
	AS         uint32
	ListenPort uint16
	HoldTime   time.Duration
	Peers      []Peer         // sorted by address
	Advertise  []netip.Prefix // the node's pod CIDR first, then ranges, deduplicated
	// Restarting is set by the agent when the kernel still holds BGP routes of an
	// earlier run: the speaker then announces a graceful restart when it starts.
	Restarting bool
}

// Peer is one session.
type Peer struct {
	Name        string // "node n2", "BGPPeer tor-r1", "--bgp-peer"
	Addr        netip.Addr
	Port        uint16
	AS          uint32
	RestartTime time.Duration
	AllowOwnAS  uint8
	Passive     bool // node-to-node: the higher address waits, so sessions do not collide
}

// Key identifies a session: a change of anything else is applied in place.
func (p Peer) Key() netip.Addr { return p.Addr }

func (p Peer) String() string {
	s := fmt.Sprintf("%s %v AS %d", p.Name, p.Addr, p.AS)
	if p.Port != DefaultPort {
		s += fmt.Sprintf(" port %d", p.Port)
	}
	s += fmt.Sprintf(" restart %s", p.RestartTime)
	if p.AllowOwnAS > 0 {
		s += fmt.Sprintf(" allow-own-as %d", p.AllowOwnAS)
	}
	if p.Passive {
		s += " passive"
	}
	return s
}

// String renders the config as text, the golden format of tests.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "router-id %v as %d port %d hold %s\n", c.RouterID, c.AS, c.ListenPort, c.HoldTime)
	for _, a := range c.Advertise {
		fmt.Fprintf(&b, "advertise %v\n", a)
	}
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "peer %s\n", p)
	}
	return b.String()
}

// Resolve computes self's speaker config. Objects that fail validation, and peers that
// cannot be used (no address yet, the node itself), are reported and left out; the rest
// is still configured.
func Resolve(self Node, podCIDR netip.Prefix, nodes []Node, confs []*objects.BGPConfiguration, peers []*objects.BGPPeer, f Flags) (Config, []error) {
	var problems []error
	var global, mine *objects.BGPConfiguration
	for _, c := range confs {
		if err := objects.Validate(c); err != nil {
			problems = append(problems, err)
			continue
		}
		switch c.Name {
		case "default":
			global = c
		case "node." + self.Name:
			mine = c
		}
	}
	spec := merged(global, mine)
	cfg := Config{RouterID: self.IP, AS: DefaultASNumber, ListenPort: DefaultPort, HoldTime: DefaultHoldTime}
	if spec.ASNumber != nil {
		cfg.AS = *spec.ASNumber
	}
	defaultAS := cfg.AS
	if self.AS != 0 {
		cfg.AS = self.AS
	}
	if spec.ListenPort != 0 {
		cfg.ListenPort = spec.ListenPort
	}
	if spec.HoldTime != nil {
		cfg.HoldTime = spec.HoldTime.Duration
	}
	restart := DefaultRestartTime
	if spec.NodeMeshMaxRestartTime != nil {
		restart = spec.NodeMeshMaxRestartTime.Duration
	}
	if podCIDR.IsValid() {
		cfg.Advertise = append(cfg.Advertise, podCIDR.Masked())
	}
	var ranges []netip.Prefix
	for _, list := range [][]objects.CIDRBlock{spec.ServiceClusterIPs, spec.ServiceExternalIPs, spec.ServiceLoadBalancerIPs} {
		for _, b := range list {
			ranges = append(ranges, netip.MustParsePrefix(b.CIDR)) // validated above
		}
	}
	ranges = append(ranges, f.Advertise...)
	slices.SortFunc(ranges, comparePrefix)
	for _, r := range slices.Compact(ranges) {
		if !slices.Contains(cfg.Advertise, r) {
			cfg.Advertise = append(cfg.Advertise, r)
		}
	}

	byAddr := map[netip.Addr]Peer{}
	add := func(p Peer) {
		switch {
		case !p.Addr.IsValid():
			return
		case p.Addr == self.IP:
			problems = append(problems, fmt.Errorf("%s: %v is this node's own address", p.Name, p.Addr))
			return
		}
		if old, dup := byAddr[p.Addr]; dup {
			// Explicit peers win over the mesh: a node acting as a route reflector.
			if !strings.HasPrefix(old.Name, "node ") {
				problems = append(problems, fmt.Errorf("%s: %v is already peered as %s", p.Name, p.Addr, old.Name))
				return
			}
		}
		byAddr[p.Addr] = p
	}
	if spec.NodeToNodeMeshEnabled == nil || *spec.NodeToNodeMeshEnabled {
		for _, n := range nodes {
			if n.Name == self.Name || !n.IP.IsValid() || n.IP.Is4() != self.IP.Is4() {
				continue
			}
			as := n.AS
			if as == 0 {
				as = defaultAS
			}
			add(Peer{Name: "node " + n.Name, Addr: n.IP, Port: cfg.ListenPort, AS: as, RestartTime: restart, Passive: self.IP.Compare(n.IP) > 0})
		}
	}
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b *objects.BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	for _, bp := range sorted {
		if err := objects.Validate(bp); err != nil {
			problems = append(problems, err)
			continue
		}
		if !selects(bp, self) {
			continue
		}
		addr, port, _ := objects.ParsePeerIP(bp.Spec.PeerIP)
		if port == 0 {
			port = cfg.ListenPort
		}
		rt := restart
		if bp.Spec.MaxRestartTime != nil {
			rt = bp.Spec.MaxRestartTime.Duration
		}
		add(Peer{Name: "BGPPeer " + bp.Name, Addr: addr, Port: port, AS: bp.Spec.ASNumber, RestartTime: rt, AllowOwnAS: bp.Spec.NumAllowedLocalASNumbers})
	}
	for _, fp := range f.Peers {
		port := fp.Port
		if port == 0 {
			port = cfg.ListenPort
		}
		add(Peer{Name: "--bgp-peer", Addr: fp.Addr, Port: port, AS: fp.AS, RestartTime: restart})
	}
	for _, p := range byAddr {
		cfg.Peers = append(cfg.Peers, p)
	}
	slices.SortFunc(cfg.Peers, func(a, b Peer) int { return a.Addr.Compare(b.Addr) })
	if !cfg.RouterID.Is4() {
		problems = append(problems, errors.New("the router ID must be an IPv4 address: the node's underlay address is not"))
	}
	return cfg, problems
}

// merged lays a node's own BGPConfiguration over the default one, field by field.
func merged(global, mine *objects.BGPConfiguration) objects.BGPConfigurationSpec {
	var s objects.BGPConfigurationSpec
	if global != nil {
		s = global.Spec
	}
	if mine == nil {
		return s
	}
	m := mine.Spec
	if m.ASNumber != nil {
		s.ASNumber = m.ASNumber
	}
	if m.NodeToNodeMeshEnabled != nil {
		s.NodeToNodeMeshEnabled = m.NodeToNodeMeshEnabled
	}
	if m.ListenPort != 0 {
		s.ListenPort = m.ListenPort
	}
	if m.NodeMeshMaxRestartTime != nil {
		s.NodeMeshMaxRestartTime = m.NodeMeshMaxRestartTime
	}
	if m.HoldTime != nil {
		s.HoldTime = m.HoldTime
	}
	if m.ServiceClusterIPs != nil {
		s.ServiceClusterIPs = m.ServiceClusterIPs
	}
	if m.ServiceExternalIPs != nil {
		s.ServiceExternalIPs = m.ServiceExternalIPs
	}
	if m.ServiceLoadBalancerIPs != nil {
		s.ServiceLoadBalancerIPs = m.ServiceLoadBalancerIPs
	}
	return s
}

// selects reports whether a BGPPeer applies to self.
func selects(p *objects.BGPPeer, self Node) bool {
	switch {
	case p.Spec.Node != "":
		return p.Spec.Node == self.Name
	case p.Spec.NodeSelector != "":
		sel, err := labels.Parse(p.Spec.NodeSelector)
		return err == nil && sel.Matches(labels.Set(self.Labels))
	}
	return true
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
