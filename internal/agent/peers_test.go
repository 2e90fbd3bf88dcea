package agent

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/podnet"
)

// A Node update that changes nothing a peer is made of (a kubelet's status
// heartbeat) does not wake the reconcile loop; a change of a peer does.
func TestOnlyPeerChangesReconcile(t *testing.T) {
	a := &Agent{peers: map[string]podnet.Peer{}, kick: make(chan struct{}, 1)}
	kicked := func() bool {
		select {
		case <-a.kick:
			return true
		default:
			return false
		}
	}
	peers := map[string]podnet.Peer{
		"n1": {Name: "n1", NodeIP: netip.MustParseAddr("198.18.0.11"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), VTEPMAC: "0e:00:00:00:00:01"},
		"n2": {Name: "n2", NodeIP: netip.MustParseAddr("198.18.0.12"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), VTEPMAC: "0e:00:00:00:00:02"},
	}
	same := func() map[string]podnet.Peer { return maps.Clone(peers) } // a new map each time, as rebuild makes
	a.setPeers(same(), false)
	if !kicked() {
		t.Fatal("the first peers did not wake the loop")
	}
	a.setPeers(same(), true)
	if !kicked() {
		t.Fatal("the first full list did not wake the loop")
	}
	for range 3 {
		a.setPeers(same(), true)
		if kicked() {
			t.Fatal("unchanged peers woke the loop")
		}
	}
	moved := same()
	p := moved["n2"]
	p.NodeIP = netip.MustParseAddr("198.18.0.22")
	moved["n2"] = p
	a.setPeers(moved, true)
	if !kicked() {
		t.Fatal("a peer's new address did not wake the loop")
	}
	fewer := same()
	delete(fewer, "n2")
	a.setPeers(fewer, true)
	if !kicked() {
		t.Fatal("a peer's removal did not wake the loop")
	}
}
