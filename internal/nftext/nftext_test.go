package nftext

import (
	"os"
	"testing"
)

func TestParseForeign(t *testing.T) {
	b, err := os.ReadFile("testdata/foreign.nft")
	if err != nil {
		t.Fatal(err)
	}
	chains := Parse(string(b))
	if len(chains) != 3 {
		t.Fatalf("chains: %+v", chains)
	}
	fw := chains[1]
	if fw.Family != "inet" || fw.Table != "fault_filter" || fw.Name != "forward" || fw.Hook != "forward" || fw.Policy != "drop" || len(fw.Rules) != 4 {
		t.Fatalf("forward chain: %+v", fw)
	}
	if chains[2].Hook != "" || chains[2].Rules[0].Handle != 10 {
		t.Fatalf("regular chain: %+v", chains[2])
	}
	for _, tc := range []struct {
		chain      string
		handle     uint64
		text       string
		drops, mtu bool
	}{
		{"input", 3, "ip daddr 10.244.2.2 tcp dport 8080 drop", true, false},
		{"forward", 4, "ct state established,related accept", false, false},
		{"forward", 5, `ip daddr 10.244.2.2 tcp dport 8080 counter packets 3 bytes 180 drop comment "block web"`, true, false},
		{"forward", 6, "icmp type destination-unreachable icmp code frag-needed drop", true, true},
		{"forward", 8, "jump other", false, false},
		{"other", 10, "meta l4proto udp reject with icmp port-unreachable", true, false},
	} {
		r, ok := Find(chains, "inet", "fault_filter", tc.chain, tc.handle)
		if !ok || r.Text != tc.text || r.Drops() != tc.drops || r.BlocksPMTU() != tc.mtu {
			t.Errorf("%s #%d: %+v ok=%v drops=%v pmtu=%v", tc.chain, tc.handle, r, ok, r.Drops(), r.BlocksPMTU())
		}
	}
	if _, ok := Find(chains, "inet", "fault_filter", "forward", 99); ok {
		t.Error("a missing handle was found")
	}
}

// TestParseFjordTable reads the service proxy's table as a lab node lists it.
func TestParseFjordTable(t *testing.T) {
	b, err := os.ReadFile("testdata/fjord-table.nft")
	if err != nil {
		t.Fatal(err)
	}
	chains := Parse(string(b))
	hooks := map[string]string{}
	rules := 0
	for _, c := range chains {
		if c.Family != "ip" || c.Table != "fjord" {
			t.Fatalf("chain %s in %s %s", c.Name, c.Family, c.Table)
		}
		hooks[c.Name] = c.Hook
		rules += len(c.Rules)
	}
	if hooks["nat-prerouting"] != "prerouting" || hooks["filter-forward"] != "forward" || hooks["services"] != "" {
		t.Fatalf("hooks: %v", hooks)
	}
	if rules < 10 {
		t.Fatalf("only %d rules read", rules)
	}
	// Elements of a map are not rules, and a comment saying "drop" is not a verdict.
	for _, c := range chains {
		for _, r := range c.Rules {
			if r.Text == "" || r.Handle == 0 {
				t.Fatalf("bad rule %+v", r)
			}
		}
	}
	if (Rule{Text: `accept comment "never drop"`}).Drops() {
		t.Fatal("a comment was read as a verdict")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("table ip x { # handle 1\n chain c { # handle 2\n type filter hook input priority 0; policy drop;\n drop # handle 3\n }\n}\n")
	f.Fuzz(func(t *testing.T, s string) { Parse(s) })
}
