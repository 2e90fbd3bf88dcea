package trace

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// Recordings from a 3-node lab (fjord trace --dump), replayed through the explanation:
//
//	nft-drop.json           echo-n1 → echo-n2:8080 with "lab fault nft-drop n2" injected
//	service-delivered.json  echo-n1 → Service echo:80 (DNAT to echo-n2), delivered
//	partition-icmp.json     echo-n1 → echo-n3 (ICMP) with "lab fault partition n3"
func replay(t *testing.T, name string) ([]Observation, Verdict) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Recording
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 1 {
		t.Fatalf("%s: %v", name, err)
	}
	return Replay(recs[0])
}

func obsOf(obs []Observation, place string) Observation {
	for _, o := range obs {
		if o.Place == place {
			return o
		}
	}
	return Observation{}
}

func TestReplayForeignDropRule(t *testing.T) {
	obs, v := replay(t, "nft-drop.json")
	if v.Outcome != "DROPPED" || v.Text != "DROPPED at n2/nftables inet fault_filter forward: ip daddr 10.244.2.2 tcp dport 8080 drop (handle 4)" ||
		!strings.Contains(v.Fix, "nft delete rule inet fault_filter forward handle 4, in n2") {
		t.Fatalf("verdict %+v", v)
	}
	n1 := obsOf(obs, "n1")
	if n1.In == "" || n1.Out != "fjord.1" || n1.VXLANOut != "eth0" || n1.Dropped != nil {
		t.Fatalf("n1: %+v", n1)
	}
	n2 := obsOf(obs, "n2")
	if n2.VXLANIn != "eth0" || n2.In != "fjord.1" || n2.Dropped == nil || n2.Dropped.Reply {
		t.Fatalf("n2: %+v", n2)
	}
	if sw := obsOf(obs, "underlay switch"); sw.VXLANIn != "n1" {
		t.Fatalf("the switch saw the encapsulated probe come in from n1: %+v", sw)
	}
	if o := obsOf(obs, "n3"); len(o.Chains) > 0 || o.In != "" {
		t.Fatalf("n3 is not on the path: %+v", o)
	}
}

func TestReplayDeliveredThroughAService(t *testing.T) {
	obs, v := replay(t, "service-delivered.json")
	if v.Outcome != "DELIVERED" {
		t.Fatalf("verdict %+v", v)
	}
	n1 := obsOf(obs, "n1")
	if len(n1.NAT) != 1 || !strings.HasPrefix(n1.NAT[0], "DNAT 10.96.0.2:80 → 10.244.") || !n1.Reply {
		t.Fatalf("n1: %+v", n1)
	}
	dnat := dnatTarget(obs)
	if !dnat.IsValid() || dnat.Port() != 8080 {
		t.Fatalf("DNAT target %v", dnat)
	}
	var chains string
	for _, c := range n1.Chains {
		chains += c + "\n"
	}
	if !strings.Contains(chains, "ip fjord svc-") || !strings.Contains(chains, "ip fjord ep-") {
		t.Fatalf("the service and endpoint chains are on the path:\n%s", chains)
	}
	if p := obsOf(obs, "pod default/echo-n2"); !p.Reply || p.In != "eth0" {
		t.Fatalf("the endpoint pod: %+v", p)
	}
}

func TestReplayPartition(t *testing.T) {
	_, v := replay(t, "partition-icmp.json")
	if v.Outcome != "DROPPED" || !strings.HasPrefix(v.Text, `DROPPED at underlay switch/nftables bridge fault_partition_n3 forward: oifname "n3" drop`) {
		t.Fatalf("verdict %+v", v)
	}
}

func TestConcludeWithoutEvidence(t *testing.T) {
	f := Flow{Proto: "tcp"}
	obs := []Observation{{Place: "pod a", Out: "eth0"}, {Place: "n1", In: "fjx", Out: "fjord.1"}, {Place: "n2"}}
	v := conclude(f, ProbeResult{}, obs, nil, "pod b")
	if v.Outcome != "LOST" || !strings.Contains(v.Text, "last seen in n1 leaving by fjord.1") {
		t.Fatalf("%+v", v)
	}
	if v := conclude(f, ProbeResult{Refused: true}, obs, nil, "pod b"); v.Outcome != "REFUSED" {
		t.Fatalf("%+v", v)
	}
	kd := kernelDrop("pod b", "eth0", "NO_SOCKET", "tcp_v4_rcv", false, 60)
	if v := conclude(f, ProbeResult{Refused: true}, obs, []*Drop{kd}, "pod b"); v.Outcome != "DROPPED" || !strings.Contains(v.Text, "nothing listens") {
		t.Fatalf("%+v", v)
	}
	if d := kernelDrop("underlay switch", "n3", "NOT_SPECIFIED", "br_dev_queue_push_xmit", false, 1500); !strings.Contains(d.Reason, "bigger than the switch port's MTU (a bridge drops it without a word) (1500-byte packet)") {
		t.Fatalf("%+v", d)
	}
	if v := conclude(Flow{Proto: "udp"}, ProbeResult{}, obs, nil, "x"); v.Outcome != "SENT" {
		t.Fatalf("%+v", v)
	}
}
