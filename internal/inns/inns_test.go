package inns

import (
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/testutil/netnstest"
)

func TestNFTAndSysctlStayInTheNamespace(t *testing.T) {
	ns := netnstest.New(t, "inns")
	err := NFT(ns.Path, knftables.InetFamily, "fjtest", func(tx *knftables.Transaction) {
		tx.Add(&knftables.Table{})
		tx.Add(&knftables.Chain{Name: "c"})
		tx.Add(&knftables.Rule{Chain: "c", Rule: "tcp dport 1 drop"})
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := NFTList(ns.Path, "list", "table", "inet", "fjtest")
	if err != nil || !strings.Contains(out, "tcp dport 1 drop") {
		t.Fatalf("listing in the namespace: %q %v", out, err)
	}
	if out, err := NFTList("", "list", "tables"); err != nil || strings.Contains(out, "fjtest") {
		t.Fatalf("the table leaked into the caller's namespace: %q %v", out, err)
	}
	if err := SetSysctl(ns.Path, "net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if v, err := Sysctl(ns.Path, "net.ipv4.ip_forward"); err != nil || v != "1" {
		t.Fatalf("forwarding in the namespace: %q %v", v, err)
	}
	if err := SetSysctl("", "net.ipv4.ip_forward", "1"); err == nil {
		t.Fatal("changing the root namespace must be refused")
	}
	if _, err := Sysctl(ns.Path, "../../etc/passwd"); err == nil {
		t.Fatal("a path must be refused as a sysctl name")
	}
}
