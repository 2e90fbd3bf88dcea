package source_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/testutil/backendtest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

// The BGP objects reach an agent the same way from both backends: from fjord's store,
// and from a real API server through the CRDs of deploy/fjord-bgp-crds.yaml, read as
// fjord's agent user (its ClusterRole fjord-agent-bgp).
func TestBGPObjectsFromBothBackends(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		peer := &objects.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor-r1"},
			Spec: objects.BGPPeerSpec{NodeSelector: "fjord.dev/rack=r1", PeerIP: "198.18.190.254", ASNumber: 65000, NumAllowedLocalASNumbers: 1}}
		as := uint32(64600)
		conf := &objects.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		conf.Spec.ASNumber = &as
		conf.Spec.ServiceClusterIPs = []objects.CIDRBlock{{CIDR: "10.96.0.0/16"}}
		for _, o := range []objects.Object{peer, conf} {
			k, _ := objects.KindOf(objects.Kinds(), o)
			o.GetObjectKind().SetGroupVersionKind(objects.GVK(k))
		}
		env.Apply(peer, conf)
		src := env.Process(kubetest.AgentUser).Source
		peers, confs := src.Informer("BGPPeer"), src.Informer("BGPConfiguration")
		started(t, src)
		eventually(t, "both objects seen, typed", func() bool {
			p, ok1 := source.Get[*objects.BGPPeer](peers, "", "tor-r1")
			c, ok2 := source.Get[*objects.BGPConfiguration](confs, "", "default")
			return ok1 && ok2 && p.Spec.NumAllowedLocalASNumbers == 1 && p.Spec.ASNumber == 65000 &&
				*c.Spec.ASNumber == 64600 && len(c.Spec.ServiceClusterIPs) == 1
		})
		env.Delete(peer)
		eventually(t, "the deleted peer leaves the cache", func() bool {
			_, ok := source.Get[*objects.BGPPeer](peers, "", "tor-r1")
			return !ok
		})
	})
}
