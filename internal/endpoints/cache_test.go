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
	c := newCache()
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
