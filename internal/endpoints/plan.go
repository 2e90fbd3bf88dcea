package endpoints

import (
	"sort"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// Plan is the writes that bring one namespace's stored slices to the desired ones.
// Writers apply Apply first and Delete second, so a reader never sees a service lose
// endpoints that it keeps: at worst it briefly sees an endpoint twice.
type Plan struct {
	Apply  []*discoveryv1.EndpointSlice // create or update, whole objects
	Delete []types.NamespacedName       // managed slices nobody wants any more
	// Blocked names desired slices that an unmanaged slice of the same name occupies;
	// the controller never overwrites those and reports them instead.
	Blocked []types.NamespacedName
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool { return len(p.Apply) == 0 && len(p.Delete) == 0 }

func (p *Plan) add(q Plan) {
	p.Apply = append(p.Apply, q.Apply...)
	p.Delete = append(p.Delete, q.Delete...)
	p.Blocked = append(p.Blocked, q.Blocked...)
}

// planService diffs the desired slices of service svcName against stored, every slice
// stored in the service's namespace by name. Only slices that differ are written; managed
// slices labelled with the service's name that are not desired are deleted.
//
// stored holds every slice of the Service's namespace, by name (a desired name may be
// taken by a slice fjord does not manage); owned only the managed ones labelled with
// this Service, the candidates for deletion. Keeping them apart makes a plan cost what
// the Service owns, not what the namespace holds: a resync of N services would
// otherwise look at N × N slices.
func planService(svcName string, desired []*discoveryv1.EndpointSlice, stored, owned map[string]*discoveryv1.EndpointSlice) Plan {
	var p Plan
	want := map[string]bool{}
	for _, d := range desired {
		want[d.Name] = true
		cur, ok := stored[d.Name]
		switch {
		case !ok:
			p.Apply = append(p.Apply, d)
		case !Managed(cur):
			p.Blocked = append(p.Blocked, types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
		case !sameContent(cur, d):
			p.Apply = append(p.Apply, d)
		}
	}
	var stale []string
	for name, cur := range owned {
		if !want[name] && Managed(cur) && cur.Labels[LabelServiceName] == svcName {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		p.Delete = append(p.Delete, types.NamespacedName{Namespace: stored[name].Namespace, Name: name})
	}
	return p
}

// sameContent compares what the controller owns in a slice; metadata the store fills in
// (uid, resourceVersion, creationTimestamp) is ignored, and nil equals empty.
func sameContent(a, b *discoveryv1.EndpointSlice) bool {
	return a.AddressType == b.AddressType &&
		equality.Semantic.DeepEqual(a.Labels, b.Labels) &&
		equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences) &&
		equality.Semantic.DeepEqual(a.Endpoints, b.Endpoints) &&
		equality.Semantic.DeepEqual(a.Ports, b.Ports)
}
