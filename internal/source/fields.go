package source

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/fjord-net/fjord/internal/objects"
)

// The field selectors the store backend evaluates itself, as the API server does for
// these fields.
var selectableFields = map[string]map[string]bool{
	"":    {"metadata.name": true, "metadata.namespace": true},
	"Pod": {"spec.nodeName": true},
}

func checkSelector(k objects.Kind, sel fields.Selector) error {
	for _, r := range sel.Requirements() {
		if !selectableFields[""][r.Field] && !selectableFields[k.Name][r.Field] {
			return fmt.Errorf("field selector %q: %s has no selectable field %q here", sel, k.Name, r.Field)
		}
	}
	return nil
}

func fieldsOf(o objects.Object) fields.Set {
	f := fields.Set{"metadata.name": o.GetName(), "metadata.namespace": o.GetNamespace()}
	if p, ok := o.(*corev1.Pod); ok {
		f["spec.nodeName"] = p.Spec.NodeName
	}
	return f
}
