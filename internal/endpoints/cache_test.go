package endpoints

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/objects"
)

// A partial view must never be planned: with pods not yet listed, every endpoint would
// look gone.
func TestCachePlansNothingUntilEveryKindIsListed(t *testing.T) {
	c := newCache(nil)
	svc := testService("web", map[string]string{"app": "web"}, port("http", 80, intstr.FromInt32(80)))
	pod := testPod("a", "10.244.1.2", "n1", true)
	existing := Desired(svc, nil, nil)[0] // stored while the pod was not there
	c.replace(kindService, []objects.Object{svc})
	c.replace(kindSlice, []objects.Object{existing})
	c.replace(kindLease, []objects.Object{&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: LeaseNamespace}}})
	if _, _, ok := c.takePlan(); ok {
		t.Fatal("planned before pods were listed")
	}
	c.replace(kindPod, []objects.Object{pod})
	p, covered, ok := c.takePlan()
	if !ok || len(covered) != 1 || len(p.Apply) != 1 || len(p.Apply[0].Endpoints) != 1 {
		t.Fatalf("plan %+v covered %v ok %v", p, covered, ok)
	}

	// Once written back, nothing is dirty and nothing is planned.
	c.update(p.Apply[0], false)
	if p, _, _ := c.takePlan(); !p.Empty() {
		t.Fatalf("second plan %+v", p)
	}
	// A pod the service does not select dirties nothing.
	c.update(testPod("x", "10.244.1.9", "n1", true, labelled("app", "db")), false)
	if _, covered, _ := c.takePlan(); len(covered) != 0 {
		t.Fatalf("unrelated pod dirtied %v", covered)
	}
	// A selected pod going unready is planned.
	c.update(testPod("a", "10.244.1.2", "n1", false), false)
	p, _, _ = c.takePlan()
	if len(p.Apply) != 1 || *p.Apply[0].Endpoints[0].Conditions.Ready {
		t.Fatalf("plan after unready %+v", p)
	}
}

// A Lease renewal of a node already alive changes no readiness, so it must not make
// the next plan cover every service (at 30,000 services that was a CPU-second per
// renewal). A node's Lease going away does.
func TestCacheLeaseRenewalDirtiesNothing(t *testing.T) {
	c := newCache(nil)
	svc := testService("web", map[string]string{"app": "web"}, port("http", 80, intstr.FromInt32(80)))
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: LeaseNamespace}}
	c.replace(kindService, []objects.Object{svc})
	c.replace(kindSlice, nil)
	c.replace(kindLease, []objects.Object{lease})
	c.replace(kindPod, []objects.Object{testPod("a", "10.244.1.2", "n1", true)})
	p, _, _ := c.takePlan()
	for _, es := range p.Apply {
		c.update(es, false)
	}
	c.takePlan()
	c.update(lease, false)
	if _, covered, _ := c.takePlan(); len(covered) != 0 {
		t.Fatalf("a renewal dirtied %v", covered)
	}
	c.update(lease, true)
	if p, covered, _ := c.takePlan(); len(covered) != 1 || len(p.Apply) != 1 || *p.Apply[0].Endpoints[0].Conditions.Ready {
		t.Fatalf("after the lease went away: covered %v, plan %+v; want the endpoint unready", covered, p)
	}
}

// The by-Service index follows a slice whose service label changes, so the old
// Service's plan deletes nothing it no longer owns and the new one sees it.
func TestCacheOwnedIndexFollowsRelabel(t *testing.T) {
	c := newCache(nil)
	web := testService("web", map[string]string{"app": "web"}, port("http", 80, intstr.FromInt32(80)))
	es := Desired(web, nil, nil)[0]
	c.update(es, false)
	if len(c.owned[key(es.Namespace, "web")]) != 1 {
		t.Fatalf("index %v", c.owned)
	}
	moved := es.DeepCopy()
	moved.Labels[LabelServiceName] = "api"
	c.update(moved, false)
	if len(c.owned[key(es.Namespace, "web")]) != 0 || len(c.owned[key(es.Namespace, "api")]) != 1 {
		t.Fatalf("after relabel: index %v", c.owned)
	}
	c.update(moved, true)
	if len(c.owned) != 0 {
		t.Fatalf("after delete: index %v", c.owned)
	}
}
