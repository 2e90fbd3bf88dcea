package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
)

func rackLab(mode podnet.Mode, router string) Config {
	c := Default()
	c.Name, c.Binary, c.Subnet, c.Racks, c.Router, c.Mode = "bgpt", "/usr/bin/fjord", netip.MustParsePrefix("198.18.190.0/24"), 2, router, mode
	return c
}

func TestRackAddressing(t *testing.T) {
	c := rackLab(podnet.ModeBGP, RouterBIRD)
	var got []string
	for i := 1; i <= 3; i++ {
		got = append(got, c.NodeName(i)+"="+c.RackName(c.Rack(i))+"/"+c.NodeAddr(i).String())
	}
	if strings.Join(got, " ") != "n1=r1/198.18.190.11 n2=r2/198.18.191.12 n3=r1/198.18.190.13" {
		t.Fatalf("placement %v", got)
	}
	if c.RouterAddr(1).String() != "198.18.190.254" || c.RouterAddr(2).String() != "198.18.191.254" || c.NodeAS(2) != 65002 {
		t.Fatalf("router %v %v, AS %d", c.RouterAddr(1), c.RouterAddr(2), c.NodeAS(2))
	}
	flat := Default()
	if flat.NodeAddr(2).String() != "198.18.0.12" || flat.Rack(2) != 1 {
		t.Fatal("a flat lab's addressing changed")
	}
}

func TestRackValidation(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Mode = podnet.ModeRouted }, "--mode routed: host-gw needs every node on one L2 segment"},
		{func(c *Config) { c.Router = "quagga" }, "--router"},
		{func(c *Config) { c.Racks = 9 }, "--racks"},
		{func(c *Config) { c.Encap = "ipip" }, "--encap"},
		{func(c *Config) { c.Mode, c.Encap = podnet.ModeVXLAN, "always" }, "--encap is for --mode bgp"},
		{func(c *Config) { c.Subnet = netip.MustParsePrefix("198.19.255.0/24") }, "--subnet: 2 racks from 198.19.255.0/24 reach"},
		{func(c *Config) { c.Racks, c.Router = 0, RouterFRR }, "--router frr needs --racks 2"},
	} {
		c := rackLab(podnet.ModeBGP, RouterBIRD)
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
	if err := rackLab(podnet.ModeVXLAN, RouterFRR).Validate(); err != nil {
		t.Fatalf("vxlan on racks: %v", err)
	}
}

// The daemons' configurations: one session per node with its rack's AS, from the
// router's address in that rack; timers and graceful restart as fjord's.
func TestRouterConfigs(t *testing.T) {
	c := rackLab(podnet.ModeBGP, RouterBIRD)
	bird := c.BIRDConfig()
	for _, want := range []string{"router id 198.18.190.254;", "hold time 9;", "graceful restart time 120;",
		"protocol bgp n2 from rack_node {\n\tlocal 198.18.191.254 as 65000;\n\tneighbor 198.18.191.12 as 65002;\n}",
		"protocol bgp n3 from rack_node {\n\tlocal 198.18.190.254 as 65000;\n\tneighbor 198.18.190.13 as 65001;\n}",
		"ipv4 { export where source = RTS_BGP; };", c.RouterDir() + "/bird.log"} {
		if !strings.Contains(bird, want) {
			t.Errorf("bird.conf lacks %q:\n%s", want, bird)
		}
	}
	frr := c.FRRConfig()
	for _, want := range []string{"router bgp 65000\n", " bgp router-id 198.18.190.254\n", " no bgp ebgp-requires-policy\n", " bgp graceful-restart restart-time 120\n",
		" timers bgp 3 9\n", " neighbor 198.18.191.12 remote-as 65002\n", " neighbor 198.18.190.13 advertisement-interval 0\n", "  maximum-paths 8\n"} {
		if !strings.Contains(frr, want) {
			t.Errorf("frr.conf lacks %q:\n%s", want, frr)
		}
	}
}

func TestRackObjectsAndArgs(t *testing.T) {
	c := rackLab(podnet.ModeBGP, RouterBIRD)
	objs := c.rackObjects("10.96.0.0/16")
	if err := objects.Admit(objs...); err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 || objs[2].(*objects.BGPPeer).Spec.NodeSelector != "fjord.dev/rack=r2" || objs[2].(*objects.BGPPeer).Spec.PeerIP != "198.18.191.254" {
		t.Fatalf("objects %+v", objs)
	}
	if got := strings.Join(c.bgpAgentArgs(2), " "); got != "--node-labels fjord.dev/rack=r2 --encap never --bgp-as 65002" {
		t.Fatalf("agent args %q", got)
	}
	if len(rackLab(podnet.ModeVXLAN, RouterBIRD).rackObjects("10.96.0.0/16")) != 0 {
		t.Fatal("a vxlan lab applies no BGP objects")
	}
}
