package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that every failure after YAML
// decoding is reported against a field, and that accepted documents yield
// internally consistent values.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/kube-proxy-config.yaml", "testdata/full.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(header + "mode: ipvs\nipvs: {scheduler: foo}"))
	f.Add([]byte(header + "ipvs: {syncPeriod: -1s}"))
	f.Add([]byte(header + "nodePortAddresses: [primary]"))
	f.Add([]byte("{}"))
	f.Add([]byte("[1, 2]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) && fe.Path == "" {
				t.Fatalf("field error without a path: %v", err)
			}
			return
		}
		if c.SyncPeriod <= 0 || c.MinSyncPeriod < 0 || c.MinSyncPeriod > c.SyncPeriod {
			t.Fatalf("inconsistent periods: %+v", c)
		}
		switch c.Mode {
		case ModeIPVS, ModeNFTables, ModeIPTables:
		default:
			t.Fatalf("mode %q", c.Mode)
		}
		if c.Scheduler == "" {
			t.Fatal("empty scheduler")
		}
	})
}
