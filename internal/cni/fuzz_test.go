package cni

import (
	"path/filepath"
	"slices"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		`{"cniVersion":"1.1.0","name":"fjord","type":"fjord","runDir":"/run/fjord","dataDir":"/var/lib/cni/networks","mtu":0}`,
		`{"cniVersion":"1.0.0","name":"n","type":"fjord","mtu":1450}`,
		`{"cniVersion":"0.4.0","name":"n","type":"fjord","prevResult":{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/32"}]}}`,
		`{"cniVersion":"1.1.0","name":"n","type":"fjord","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`,
		`{"cniVersion":"1.1.0","name":"n","type":"fjord","mtu":70000}`,
		`{"cniVersion":"1.1.0","name":"n","type":"fjord","mtu":"x"}`,
		`{"cniVersion":"1.1.0","name":"n","type":"fjord","runDir":"rel"}`,
		`{`, `null`, `[]`, `""`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if c != nil || err.Msg == "" {
				t.Fatalf("error %v with config %+v", err, c)
			}
			return
		}
		if !slices.Contains(SupportedVersions, c.CNIVersion) || c.Name == "" {
			t.Fatalf("accepted version %q name %q", c.CNIVersion, c.Name)
		}
		if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
			t.Fatalf("accepted mtu %d", c.MTU)
		}
		for _, d := range []string{c.RunDir, c.DataDir, c.allocDir()} {
			if !filepath.IsAbs(d) || filepath.Clean(d) != d {
				t.Fatalf("accepted directory %q", d)
			}
		}
		if filepath.Dir(c.allocDir()) != c.DataDir {
			t.Fatalf("network name %q escapes dataDir", c.Name)
		}
	})
}
