package bgp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/objects"
)

func decode[T objects.Object](t *testing.T, yaml string) []T {
	t.Helper()
	objs, err := objects.Decode(strings.NewReader(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, o := range objs {
		out = append(out, o.(T))
	}
	return out
}

var labNodes = []Node{
	{Name: "n1", IP: netip.MustParseAddr("198.18.190.11"), AS: 65001, Labels: map[string]string{"fjord.dev/rack": "r1"}},
	{Name: "n2", IP: netip.MustParseAddr("198.18.191.12"), AS: 65002, Labels: map[string]string{"fjord.dev/rack": "r2"}},
	{Name: "n3", IP: netip.MustParseAddr("198.18.190.13"), Labels: map[string]string{"fjord.dev/rack": "r1"}},
	{Name: "joining"},
}

const rackPeers = `apiVersion: fjord.dev/v1
kind: BGPPeer
metadata: {name: tor-r1}
spec: {nodeSelector: fjord.dev/rack=r1, peerIP: 198.18.190.254, asNumber: 65000, numAllowedLocalASNumbers: 1}
---
apiVersion: fjord.dev/v1
kind: BGPPeer
metadata: {name: tor-r2}
spec: {nodeSelector: fjord.dev/rack=r2, peerIP: 198.18.191.254, asNumber: 65000, numAllowedLocalASNumbers: 1}
---
apiVersion: fjord.dev/v1
kind: BGPPeer
metadata: {name: rr-for-n1}
spec: {node: n1, peerIP: '198.18.250.1:1179', asNumber: 64999, maxRestartTime: 30s}
`

func TestResolve(t *testing.T) {
	pod := netip.MustParsePrefix("10.244.0.0/24")
	tests := []struct {
		name   string
		self   Node
		confs  string
		peers  string
		flags  Flags
		want   string
		errors []string
	}{{
		name: "defaults: full mesh in AS 64512, the higher address passive",
		self: labNodes[2],
		want: `router-id 198.18.190.13 as 64512 port 179 hold 9s
advertise 10.244.0.0/24
peer node n1 198.18.190.11 AS 65001 restart 2m0s passive
peer node n2 198.18.191.12 AS 65002 restart 2m0s
`,
	}, {
		name:  "racks: mesh off, each rack's nodes peer with their router, per-node AS, service ranges",
		self:  labNodes[0],
		confs: "apiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec:\n  nodeToNodeMeshEnabled: false\n  asNumber: 64600\n  holdTime: 6s\n  serviceClusterIPs: [{cidr: 10.96.0.0/16}]\n  serviceLoadBalancerIPs: [{cidr: 198.18.252.0/24}]\n",
		peers: rackPeers,
		flags: Flags{Advertise: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("198.18.251.0/24")}},
		want: `router-id 198.18.190.11 as 65001 port 179 hold 6s
advertise 10.244.0.0/24
advertise 10.96.0.0/16
advertise 198.18.251.0/24
advertise 198.18.252.0/24
peer BGPPeer tor-r1 198.18.190.254 AS 65000 restart 2m0s allow-own-as 1
peer BGPPeer rr-for-n1 198.18.250.1 AS 64999 port 1179 restart 30s
`,
	}, {
		name:  "a node's own BGPConfiguration overrides the default; flags add peers",
		self:  labNodes[2],
		confs: "apiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 64600, listenPort: 1179}\n---\napiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: node.n3}\nspec: {asNumber: 65003, nodeMeshMaxRestartTime: 60s}\n",
		peers: rackPeers,
		flags: Flags{Peers: []FlagPeer{{Addr: netip.MustParseAddr("198.18.190.253"), AS: 65000}, {Addr: netip.MustParseAddr("198.18.190.254"), AS: 65000}}},
		want: `router-id 198.18.190.13 as 65003 port 1179 hold 9s
advertise 10.244.0.0/24
peer --bgp-peer 198.18.190.253 AS 65000 port 1179 restart 1m0s
peer BGPPeer tor-r1 198.18.190.254 AS 65000 port 1179 restart 1m0s allow-own-as 1
`,
		errors: []string{"--bgp-peer: 198.18.190.254 is already peered as BGPPeer tor-r1"},
	}, {
		name:  "a peer object pointing at the node itself, and an invalid object",
		self:  labNodes[1],
		confs: "apiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false}\n",
		peers: "apiVersion: fjord.dev/v1\nkind: BGPPeer\nmetadata: {name: self}\nspec: {peerIP: 198.18.191.12, asNumber: 65000}\n",
		want: `router-id 198.18.191.12 as 65002 port 179 hold 9s
advertise 10.244.0.0/24
`,
		errors: []string{"BGPPeer self: 198.18.191.12 is this node's own address"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var confs []*objects.BGPConfiguration
			var peers []*objects.BGPPeer
			if tt.confs != "" {
				confs = decode[*objects.BGPConfiguration](t, tt.confs)
			}
			if tt.peers != "" {
				peers = decode[*objects.BGPPeer](t, tt.peers)
			}
			cfg, errs := Resolve(tt.self, pod, labNodes, confs, peers, tt.flags)
			if got := cfg.String(); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if len(errs) != len(tt.errors) {
				t.Fatalf("errors %v, want %v", errs, tt.errors)
			}
			for i, e := range tt.errors {
				if !strings.Contains(errs[i].Error(), e) {
					t.Errorf("error %q does not contain %q", errs[i], e)
				}
			}
		})
	}
}

func TestResolveReportsInvalidObjects(t *testing.T) {
	as := uint32(23456)
	bad := &objects.BGPConfiguration{}
	bad.Name = "default"
	bad.Spec.ASNumber = &as
	badPeer := &objects.BGPPeer{}
	badPeer.Name = "tor"
	badPeer.Spec.PeerIP = "nope"
	cfg, errs := Resolve(labNodes[0], netip.Prefix{}, nil, []*objects.BGPConfiguration{bad}, []*objects.BGPPeer{badPeer}, Flags{})
	if cfg.AS != 65001 || len(cfg.Peers) != 0 {
		t.Fatalf("config %s", cfg)
	}
	joined := ""
	for _, e := range errs {
		joined += e.Error() + "\n"
	}
	for _, want := range []string{"BGPConfiguration default: spec.asNumber: Invalid value: 23456", "BGPPeer tor: spec.peerIP: Invalid value: \"nope\"", "BGPPeer tor: spec.asNumber: Required value"} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors\n%s\ndo not contain %s", joined, want)
		}
	}
}

func TestParseFlagPeer(t *testing.T) {
	p, err := ParseFlagPeer("198.18.190.254:1179/65000")
	if err != nil || p.Addr.String() != "198.18.190.254" || p.Port != 1179 || p.AS != 65000 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"198.18.190.254", "198.18.190.254/0", "x/65000", "198.18.190.254:0/65000"} {
		if _, err := ParseFlagPeer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
