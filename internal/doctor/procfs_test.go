package doctor

import (
	"os"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	rec, err := os.ReadFile("testdata/proc-stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseProcStat(string(rec))
	if err != nil {
		t.Fatal(err)
	}
	// Recorded on this 2-CPU VM: cpu 65579 67205 32899 844280 1499 0 490 74 0 0.
	c := st["cpu"]
	if c.User != 65579 || c.SoftIRQ != 490 || c.Steal != 74 || st["cpu1"].IOWait != 1255 || len(st) != 3 {
		t.Fatalf("%+v", st)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu a b c d e\n"} {
		if _, err := ParseProcStat(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	// An older kernel's shorter lines still parse.
	if s, err := ParseProcStat("cpu 1 2 3 4\n"); err != nil || s["cpu"].Idle != 4 {
		t.Errorf("short line: %+v %v", s, err)
	}
}

func TestShares(t *testing.T) {
	before := map[string]CPUTimes{"cpu": {User: 100, Idle: 800, SoftIRQ: 10, Steal: 0}}
	after := map[string]CPUTimes{"cpu": {User: 150, Idle: 820, SoftIRQ: 30, Steal: 10}} // 100 ticks passed
	sh := Shares(before, after)
	if len(sh) != 1 || sh[0].Busy != 80 || sh[0].SoftIRQ != 20 || sh[0].Steal != 10 {
		t.Fatalf("%+v", sh)
	}
	if len(Shares(after, before)) != 0 {
		t.Fatal("a counter going backwards must not give shares")
	}
}

func TestParsePIDStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		comm  string
		ticks uint64
		ok    bool
	}{
		{"4242 (fjord) R 1 4242 4242 0 -1 4194560 700 0 0 0 950 12 0 0 20 0 8 0 12345 1665676 8398 18446744073709551615", "fjord", 962, true},
		{"7 (a (weird) name) S 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1 1", "a (weird) name", 7, true},
		{"7 (x) S 1 2", "", 0, false},
		{"garbage", "", 0, false},
	} {
		p, err := ParsePIDStat(tc.in)
		if (err == nil) != tc.ok || tc.ok && (p.Comm != tc.comm || p.Ticks != tc.ticks) {
			t.Errorf("%q: %+v %v", tc.in, p, err)
		}
	}
}

func TestParsePSI(t *testing.T) {
	if v := ParsePSI("some avg10=32.01 avg60=18.41 avg300=22.19 total=542027845\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"); v != 32.01 {
		t.Fatalf("%v", v)
	}
	if v := ParsePSI(""); v != -1 {
		t.Fatalf("absent: %v", v)
	}
}

func TestParseSNMP(t *testing.T) {
	rec, err := os.ReadFile("testdata/proc-net-snmp.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSNMP(string(rec))
	if err != nil {
		t.Fatal(err)
	}
	// Recorded in a lab node's namespace.
	if s["Ip.Forwarding"] != 1 || s["Ip.ForwDatagrams"] != 160 || s["Ip.ReasmReqds"] != 56 || s["Icmp.OutEchos"] != 25 {
		t.Fatalf("%v", s)
	}
	if _, ok := s["Tcp.RetransSegs"]; !ok {
		t.Fatal("Tcp counters missing")
	}
	if _, err := ParseSNMP("Ip: A B\nIp: 1\n"); err == nil {
		t.Fatal("mismatched lines must be refused")
	}
}
