package objects

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GVK returns the group/version/kind of a kind.
func GVK(k Kind) schema.GroupVersionKind {
	gv, _ := schema.ParseGroupVersion(k.APIVersion)
	return gv.WithKind(k.Name)
}

// KindOf finds the kind of a typed object by its Go type, so callers never have to keep
// TypeMeta filled in.
func KindOf(r Registry, obj Object) (Kind, error) {
	t := reflect.TypeOf(obj)
	for _, k := range r.kinds {
		if reflect.TypeOf(k.New()) == t {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("type %T is not a kind fjord stores", obj)
}
