package agent

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// Annotations fjord publishes on its Node.
const (
	AnnotationBackend = "fjord.dev/backend"   // vxlan or routed
	AnnotationVTEPMAC = "fjord.dev/vtep-mac"  // the node's vxlan device MAC
	AnnotationNodeIP  = "fjord.dev/public-ip" // underlay address peers send to
)

func (a *Agent) nodeKind() objects.Kind {
	k, _ := a.deps.Store.Kinds().ByName("Node")
	return k
}

// register creates the Node or brings its addresses and annotations up to date,
// keeping anything else (labels others set, spec.podCIDR) as it is.
func (a *Agent) register(ctx context.Context) error {
	want := func(n *corev1.Node) bool {
		changed := false
		set := func(m *map[string]string, k, v string) {
			if *m == nil {
				*m = map[string]string{}
			}
			if (*m)[k] != v {
				(*m)[k] = v
				changed = true
			}
		}
		set(&n.Annotations, AnnotationBackend, string(a.cfg.Mode))
		set(&n.Annotations, AnnotationNodeIP, a.self.NodeIP.String())
		if a.cfg.Mode == "vxlan" {
			set(&n.Annotations, AnnotationVTEPMAC, a.self.Device.MAC)
		} else if _, ok := n.Annotations[AnnotationVTEPMAC]; ok {
			delete(n.Annotations, AnnotationVTEPMAC)
			changed = true
		}
		set(&n.Labels, "kubernetes.io/hostname", a.cfg.NodeName)
		set(&n.Labels, "kubernetes.io/os", "linux")
		addrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.self.NodeIP.String()}, {Type: corev1.NodeHostName, Address: a.cfg.NodeName}}
		if !sameAddresses(n.Status.Addresses, addrs) {
			n.Status.Addresses = addrs
			changed = true
		}
		return changed
	}
	_, err := a.deps.Store.Update(ctx, a.nodeKind(), "", a.cfg.NodeName, func(o objects.Object) (bool, error) {
		return want(o.(*corev1.Node)), nil
	})
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName}}
	want(n)
	if err := a.deps.Store.Create(ctx, n); err != nil {
		return err
	}
	a.log.Info("registered node")
	return nil
}

func sameAddresses(a, b []corev1.NodeAddress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
