package cni

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		code       uint   // 0: valid
		msg        string // substring of the error message
	}{
		{"defaults", `{"cniVersion":"1.1.0","name":"fjord","type":"fjord"}`, 0, ""},
		{"all fields", `{"cniVersion":"1.0.0","name":"n","type":"fjord","runDir":"/x/","dataDir":"/d","mtu":1400}`, 0, ""},
		{"runtime keys", `{"cniVersion":"0.4.0","name":"n","type":"fjord","runtimeConfig":{},"args":{},"capabilities":{"x":true},"dns":{},"prevResult":{"ips":[]}}`, 0, ""},
		{"malformed", `{"cniVersion":`, types.ErrDecodingFailure, "network config"},
		{"not an object", `[1]`, types.ErrDecodingFailure, "network config"},
		{"missing version", `{"name":"n","type":"fjord"}`, types.ErrInvalidNetworkConfig, "cniVersion: missing"},
		{"old version", `{"cniVersion":"0.3.1","name":"n","type":"fjord"}`, types.ErrIncompatibleCNIVersion, "cniVersion"},
		{"future version", `{"cniVersion":"9.0.0","name":"n","type":"fjord"}`, types.ErrIncompatibleCNIVersion, "cniVersion"},
		{"no name", `{"cniVersion":"1.1.0","type":"fjord"}`, types.ErrInvalidNetworkConfig, "name:"},
		{"bad name", `{"cniVersion":"1.1.0","name":"../etc","type":"fjord"}`, types.ErrInvalidNetworkConfig, "name:"},
		{"long name", `{"cniVersion":"1.1.0","name":"` + strings.Repeat("a", 201) + `","type":"fjord"}`, types.ErrInvalidNetworkConfig, "name: longer"},
		{"wrong type", `{"cniVersion":"1.1.0","name":"n","type":"bridge"}`, types.ErrInvalidNetworkConfig, "type:"},
		{"mtu high", `{"cniVersion":"1.1.0","name":"n","type":"fjord","mtu":70000}`, types.ErrInvalidNetworkConfig, "mtu: 70000 is outside 576..65535"},
		{"mtu negative", `{"cniVersion":"1.1.0","name":"n","type":"fjord","mtu":-1}`, types.ErrInvalidNetworkConfig, "mtu: -1"},
		{"mtu string", `{"cniVersion":"1.1.0","name":"n","type":"fjord","mtu":"1400"}`, types.ErrInvalidNetworkConfig, "mtu: must be a number"},
		{"relative runDir", `{"cniVersion":"1.1.0","name":"n","type":"fjord","runDir":"run"}`, types.ErrInvalidNetworkConfig, "runDir:"},
		{"empty dataDir", `{"cniVersion":"1.1.0","name":"n","type":"fjord","dataDir":""}`, types.ErrInvalidNetworkConfig, "dataDir:"},
		{"typo", `{"cniVersion":"1.1.0","name":"n","type":"fjord","mut":1400}`, types.ErrInvalidNetworkConfig, "mut: unknown field"},
		{"ipam", `{"cniVersion":"1.1.0","name":"n","type":"fjord","ipam":{"type":"host-local"}}`, types.ErrInvalidNetworkConfig, "ipam:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.conf))
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", c)
			}
			if err.Code != tc.code || !strings.Contains(err.Msg, tc.msg) {
				t.Fatalf("got code %d %q, want code %d containing %q", err.Code, err.Msg, tc.code, tc.msg)
			}
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"fjord","type":"fjord","runDir":"/a/../b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.RunDir != "/b" || c.DataDir != DefaultDataDir || c.MTU != 0 || c.allocDir() != DefaultDataDir+"/fjord" {
		t.Fatalf("got %+v", c)
	}
}

func TestConfList(t *testing.T) {
	b, err := ConfList("fjord", "/run/fjord", "/var/lib/cni/networks", 0)
	if err != nil {
		t.Fatal(err)
	}
	var list types.NetConfList
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != "1.1.0" || list.Name != "fjord" || len(list.Plugins) != 2 ||
		list.Plugins[0].Type != "fjord" || list.Plugins[1].Type != "portmap" || !list.Plugins[1].Capabilities["portMappings"] {
		t.Fatalf("unexpected conflist:\n%s", b)
	}
	// The fjord entry, as a runtime hands it to the plugin, parses.
	var raw struct{ Plugins []map[string]any }
	json.Unmarshal(b, &raw)
	raw.Plugins[0]["cniVersion"], raw.Plugins[0]["name"] = list.CNIVersion, list.Name
	pb, _ := json.Marshal(raw.Plugins[0])
	if _, err := ParseConfig(pb); err != nil {
		t.Fatalf("fjord entry does not parse: %v", err)
	}
	if _, err := ConfList("fjord", "relative", "/d", 0); err == nil || !strings.Contains(err.Error(), "runDir") {
		t.Fatalf("bad runDir accepted: %v", err)
	}
	if _, err := ConfList("fjord", "/r", "/d", 70000); err == nil || !strings.Contains(err.Error(), "mtu") {
		t.Fatalf("bad mtu accepted: %v", err)
	}
}

func TestHostVethName(t *testing.T) {
	n := HostVethName("abc", "eth0")
	if len(n) != 13 || !strings.HasPrefix(n, "fj") || !isHostVethName(n) || n != HostVethName("abc", "eth0") {
		t.Fatalf("HostVethName = %q", n)
	}
	if n == HostVethName("abc", "eth1") || n == HostVethName("abd", "eth0") {
		t.Fatal("names collide")
	}
	for _, bad := range []string{"fj", "eth0", "fjxyzxyzxyzxy", n + "0"} {
		if isHostVethName(bad) {
			t.Errorf("isHostVethName(%q) = true", bad)
		}
	}
}
