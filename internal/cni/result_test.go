package cni

import (
	"encoding/json"
	"net"
	"net/netip"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/fjord-net/fjord/internal/ipam"
)

func fakeWired() wired {
	mac := func(s string) netlink.Link {
		hw, _ := net.ParseMAC(s)
		return &netlink.Veth{LinkAttrs: netlink.LinkAttrs{HardwareAddr: hw}}
	}
	return wired{host: mac("02:00:00:00:00:01"), pod: mac("02:00:00:00:00:02")}
}

func TestBuildResultChained(t *testing.T) {
	att := newAttachment("n", "/var/run/netns/p", ipam.Owner{ContainerID: "c", IfName: "eth1"},
		netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.1"), 1450)
	prev := &current.Result{CNIVersion: "1.0.0", Interfaces: []*current.Interface{{Name: "eth0", Sandbox: "/var/run/netns/p"}}}
	r := buildResult(att, fakeWired(), prev)
	if len(r.Interfaces) != 3 || *r.IPs[0].Interface != 2 || r.Interfaces[2].Name != "eth1" || r.Interfaces[1].Mac != "02:00:00:00:00:01" {
		t.Fatalf("chained result: %+v", r)
	}
	for _, ver := range SupportedVersions {
		var buf jsonBuf
		if err := printResult(&buf, r, ver); err != nil {
			t.Fatalf("%s: %v", ver, err)
		}
		var got struct{ CNIVersion string }
		if err := json.Unmarshal(buf, &got); err != nil || got.CNIVersion != ver {
			t.Fatalf("%s: printed %s", ver, buf)
		}
	}
}

type jsonBuf []byte

func (b *jsonBuf) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
