package endpoints

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPlanService(t *testing.T) {
	svc := testService("web", map[string]string{"app": "web"}, port("http", 80, intstr.FromInt32(80)))
	live := map[string]bool{"n1": true}
	pods := []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true)}
	desired := func() []*discoveryv1.EndpointSlice { return Desired(svc, pods, live) }
	stored := func(es ...*discoveryv1.EndpointSlice) map[string]*discoveryv1.EndpointSlice {
		m := map[string]*discoveryv1.EndpointSlice{}
		for _, e := range es {
			m[e.Name] = e
		}
		return m
	}
	// What the store hands back: same content plus server-filled metadata.
	asStored := func(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		c := es.DeepCopy()
		c.UID, c.ResourceVersion, c.CreationTimestamp = "x", "42", metav1.Now()
		return c
	}
	unmanaged := func(name, svcName string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Labels: map[string]string{LabelServiceName: svcName}}}
	}
	nn := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "default", Name: name} }

	t.Run("missing is created", func(t *testing.T) {
		p := planFor("web", desired(), stored())
		if len(p.Apply) != 1 || len(p.Delete) != 0 {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("unchanged writes nothing", func(t *testing.T) {
		if p := planFor("web", desired(), stored(asStored(desired()[0]))); !p.Empty() {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("changed is updated", func(t *testing.T) {
		old := asStored(desired()[0])
		*old.Endpoints[0].Conditions.Ready = false
		if p := planFor("web", desired(), stored(old)); len(p.Apply) != 1 {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("stale managed slices are deleted, others kept", func(t *testing.T) {
		staleMine := asStored(desired()[0])
		staleMine.Name = "web-fjord-2"
		otherSvc := asStored(desired()[0])
		otherSvc.Name, otherSvc.Labels = "db-fjord", map[string]string{LabelServiceName: "db", LabelManagedBy: ManagedBy}
		p := planFor("web", desired(), stored(asStored(desired()[0]), staleMine, otherSvc, unmanaged("web-user", "web")))
		if len(p.Apply) != 0 || len(p.Delete) != 1 || p.Delete[0] != nn("web-fjord-2") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("service gone deletes all its managed slices", func(t *testing.T) {
		p := planFor("web", nil, stored(asStored(desired()[0]), unmanaged("web-user", "web")))
		if len(p.Delete) != 1 || p.Delete[0] != nn("web-fjord") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("an unmanaged slice holding the name is never overwritten", func(t *testing.T) {
		p := planFor("web", desired(), stored(unmanaged("web-fjord", "web")))
		if !p.Empty() || len(p.Blocked) != 1 || p.Blocked[0] != nn("web-fjord") {
			t.Fatalf("%+v", p)
		}
	})
}

// planFor is planService with the owned slices picked out of stored the way the
// cache's index does.
func planFor(svc string, desired []*discoveryv1.EndpointSlice, stored map[string]*discoveryv1.EndpointSlice) Plan {
	owned := map[string]*discoveryv1.EndpointSlice{}
	for name, es := range stored {
		if Managed(es) && es.Labels[LabelServiceName] == svc {
			owned[name] = es
		}
	}
	return planService(svc, desired, stored, owned)
}
