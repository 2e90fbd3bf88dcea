package cli

import (
	"strings"
	"testing"

	"github.com/fjord-net/fjord/internal/objects"
)

func TestBGPColumns(t *testing.T) {
	objs, err := objects.Decode(strings.NewReader(`apiVersion: fjord.dev/v1
kind: BGPPeer
metadata: {name: tor-r1}
spec: {nodeSelector: fjord.dev/rack=r1, peerIP: 198.18.190.254, asNumber: 65000}
---
apiVersion: fjord.dev/v1
kind: BGPPeer
metadata: {name: rr}
spec: {peerIP: 198.18.250.1, asNumber: 64512}
---
apiVersion: fjord.dev/v1
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	row := func(o objects.Object) string {
		var v []string
		for _, c := range bgpColumns(o.GetObjectKind().GroupVersionKind().Kind) {
			v = append(v, c.header+"="+c.value(o))
		}
		return strings.Join(v, " ")
	}
	for i, want := range []string{"PEER=198.18.190.254 AS=65000 NODES=fjord.dev/rack=r1", "PEER=198.18.250.1 AS=64512 NODES=<all>", "AS=<default> MESH=off"} {
		if got := row(objs[i]); got != want {
			t.Errorf("row %d: %q, want %q", i, got, want)
		}
	}
}
