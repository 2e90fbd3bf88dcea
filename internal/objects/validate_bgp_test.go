package objects

import (
	"errors"
	"strings"
	"testing"
)

const (
	bgpConfHead = "apiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec:\n"
	bgpPeerHead = "apiVersion: fjord.dev/v1\nkind: BGPPeer\nmetadata: {name: tor}\nspec:\n"
)

func TestValidateBGPGood(t *testing.T) {
	for name, in := range map[string]string{
		"config":           bgpConfHead + "  asNumber: 64512\n  nodeToNodeMeshEnabled: false\n  listenPort: 1179\n  nodeMeshMaxRestartTime: 120s\n  holdTime: 9s\n  serviceClusterIPs: [{cidr: 10.96.0.0/16}]\n  serviceExternalIPs: [{cidr: 198.18.250.0/24}]\n  serviceLoadBalancerIPs: [{cidr: 'fd00:1::/64'}]\n",
		"config empty":     bgpConfHead + "  {}\n",
		"config of a node": "apiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: node.n1}\nspec: {asNumber: 65001}\n",
		"peer all nodes":   bgpPeerHead + "  peerIP: 198.18.190.254\n  asNumber: 65000\n",
		"peer rack":        bgpPeerHead + "  nodeSelector: fjord.dev/rack=r1\n  peerIP: 198.18.190.254:1179\n  asNumber: 65000\n  maxRestartTime: 60s\n  numAllowedLocalASNumbers: 1\n",
		"peer one node v6": bgpPeerHead + "  node: n1\n  peerIP: 'fd00::1'\n  asNumber: 4200000000\n",
		"node AS":          "apiVersion: v1\nkind: Node\nmetadata: {name: n1, annotations: {fjord.dev/bgp-as-number: '1.10'}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := Validate(decodeOne(t, in)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateBGPBad(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"config name", "apiVersion: fjord.dev/v1\nkind: BGPConfiguration\nmetadata: {name: global}\n", []string{`BGPConfiguration global: metadata.name: Invalid value: "global": must be "default" (every node) or "node.<node name>"`}},
		{"config AS", bgpConfHead + "  asNumber: 23456\n", []string{"BGPConfiguration default: spec.asNumber: Invalid value: 23456: AS 23456 is AS_TRANS"}},
		{"config AS zero", bgpConfHead + "  asNumber: 0\n", []string{"spec.asNumber: Invalid value: 0: AS 0 is reserved"}},
		{"config times", bgpConfHead + "  nodeMeshMaxRestartTime: 5000s\n  holdTime: 2s\n", []string{`spec.nodeMeshMaxRestartTime: Invalid value: "1h23m20s": must be whole seconds between 1s and 4095s`, `spec.holdTime: Invalid value: "2s": must be whole seconds between 3s and 65535s`}},
		{"config blocks", bgpConfHead + "  serviceClusterIPs: [{cidr: 10.96.0.1/16}]\n  serviceExternalIPs: [{cidr: ''}]\n  serviceLoadBalancerIPs: [{cidr: nope}]\n", []string{"spec.serviceClusterIPs[0].cidr: Invalid value: \"10.96.0.1/16\": has host bits set (did you mean 10.96.0.0/16?)", "spec.serviceExternalIPs[0].cidr: Required value", "spec.serviceLoadBalancerIPs[0].cidr: Invalid value: \"nope\""}},
		{"peer required", bgpPeerHead + "  node: n1\n", []string{"BGPPeer tor: spec.peerIP: Required value", "spec.asNumber: Required value"}},
		{"peer node and selector", bgpPeerHead + "  node: N_1\n  nodeSelector: 'a in (b'\n  peerIP: 198.18.190.254\n  asNumber: 65000\n", []string{`spec.node: Invalid value: "N_1"`, `spec.nodeSelector: Invalid value: "a in (b": may not be set together with spec.node`, `spec.nodeSelector: Invalid value: "a in (b": unable to parse requirement`}},
		{"peer address", bgpPeerHead + "  peerIP: 198.18.190.300\n  asNumber: 65000\n", []string{`spec.peerIP: Invalid value: "198.18.190.300": must be an IP address`}},
		{"peer port", bgpPeerHead + "  peerIP: 198.18.190.254:0\n  asNumber: 65000\n", []string{`spec.peerIP: Invalid value: "198.18.190.254:0": port must be between 1 and 65535`}},
		{"peer AS and restart", bgpPeerHead + "  peerIP: 198.18.190.254\n  asNumber: 65535\n  maxRestartTime: 1500ms\n  numAllowedLocalASNumbers: 11\n", []string{"spec.asNumber: Invalid value: 65535: AS 65535 is reserved", `spec.maxRestartTime: Invalid value: "1.5s"`, "spec.numAllowedLocalASNumbers: Invalid value: 11: must be between 0 and 10"}},
		{"node AS", "apiVersion: v1\nkind: Node\nmetadata: {name: n1, annotations: {fjord.dev/bgp-as-number: 'as65001'}}\n", []string{`Node n1: metadata.annotations[fjord.dev/bgp-as-number]: Invalid value: "as65001": "as65001" is not an AS number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(decodeOne(t, tt.in))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %v (%T), want *ValidationError", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestBGPStrictDecoding(t *testing.T) {
	_, err := Decode(strings.NewReader(bgpPeerHead+"  peerIp: 198.18.190.254\n  asNumber: 65000\n"), "peer.yaml")
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.peerIp"`) {
		t.Fatalf("a misspelt field must be refused naming it, got %v", err)
	}
	_, err = Decode(strings.NewReader("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: a}\n"), "peer.yaml")
	if err == nil || !strings.Contains(err.Error(), `use "fjord.dev/v1"`) {
		t.Fatalf("Calico's group must be refused pointing at fjord's, got %v", err)
	}
}

func TestParseASNumber(t *testing.T) {
	for in, want := range map[string]uint32{"64512": 64512, "1.10": 65546, "4200000000": 4200000000} {
		if got, err := ParseASNumber(in); err != nil || got != want {
			t.Errorf("ParseASNumber(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "23456", "65535", "4294967295", "x", "1.", "70000.1", "-1"} {
		if _, err := ParseASNumber(in); err == nil {
			t.Errorf("ParseASNumber(%q) accepted", in)
		}
	}
}

func TestBGPDeepCopyIsDeep(t *testing.T) {
	c := decodeOne(t, bgpConfHead+"  asNumber: 64512\n  serviceClusterIPs: [{cidr: 10.96.0.0/16}]\n").(*BGPConfiguration)
	cp := c.DeepCopyObject().(*BGPConfiguration)
	*cp.Spec.ASNumber = 1
	cp.Spec.ServiceClusterIPs[0].CIDR = "x"
	if *c.Spec.ASNumber != 64512 || c.Spec.ServiceClusterIPs[0].CIDR != "10.96.0.0/16" {
		t.Fatal("the copy shares memory with the original")
	}
}
