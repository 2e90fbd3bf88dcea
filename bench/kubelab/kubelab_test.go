package main

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	out := []outLine{
		{1 * time.Second, "  kubebuild: built kubelet in 40s"},
		{2 * time.Second, "• underlay 198.18.210.0/24 (MTU 1500) and host link fjord-kbench ... ok (10ms)"},
		{3 * time.Second, "• images: pause, agnhost, ... (cached) and fjord's, from this binary ... "},
		{4 * time.Second, "    kubebuild: building coredns v1.15.0 ..."},
		{5 * time.Second, "    kubebuild: coredns ready in /x/coredns after 1m0sok (1m2.5s)"},
		{6 * time.Second, "• Kubernetes control plane ... failed"},
		{7 * time.Second, "✗ kube-apiserver not ready after 60s (last: ok (1s))"},
	}
	want := []upStep{
		{Name: "underlay 198.18.210.0/24 (MTU 1500) and host link fjord-kbench", Dur: 10 * time.Millisecond, End: 2 * time.Second},
		{Name: "images: pause, agnhost, ... (cached) and fjord's, from this binary", Dur: 62500 * time.Millisecond, End: 5 * time.Second},
	}
	if got := parseSteps(out); !reflect.DeepEqual(got, want) {
		t.Errorf("parseSteps:\n got %+v\nwant %+v", got, want)
	}
}

func TestUpperHalf(t *testing.T) {
	for in, want := range map[string]string{"10.244.1.0/24": "10.244.1.128/25", "10.244.0.0/16": "10.244.128.0/17", "10.0.0.4/30": "10.0.0.6/31"} {
		if got := upperHalf(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("upperHalf(%s) = %v, want %s", in, got, want)
		}
	}
}

func TestRefConfList(t *testing.T) {
	var conf struct {
		CNIVersion, Name string
		Plugins          []struct {
			Type string
			IPAM struct {
				Type   string
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal(refConfList(netip.MustParsePrefix("10.244.2.0/24")), &conf); err != nil {
		t.Fatal(err)
	}
	if conf.CNIVersion != "1.0.0" || conf.Name != refNet || len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" ||
		conf.Plugins[0].IPAM.Type != "host-local" || conf.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.244.2.128/25" || conf.Plugins[1].Type != "portmap" {
		t.Errorf("reference network list: %+v", conf)
	}
}
