package source

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/objects"
)

// WithDynamic lets the Kubernetes backend serve fjord's own kinds (the BGP objects,
// group fjord.dev), which a cluster serves through the CRDs in
// deploy/fjord-bgp-crds.yaml: they are listed and watched as unstructured objects and
// handed to informers as fjord's typed objects (an object that does not convert is left
// out; consumers validate what they read, as the agent does with objects.Validate).
func (b Kubernetes) WithDynamic(d dynamic.Interface) Kubernetes {
	b.dynamic = d
	return b
}

// crdListWatch lists and watches one of fjord's kinds through the dynamic client.
func (b Kubernetes) crdListWatch(k objects.Kind, ns string, sel fields.Selector) (cache.ListerWatcher, error) {
	if b.dynamic == nil {
		return nil, fmt.Errorf("kind %s (%s) is a custom resource: the Kubernetes backend needs a dynamic client (WithDynamic)", k.Name, k.APIVersion)
	}
	gv, err := schema.ParseGroupVersion(k.APIVersion)
	if err != nil {
		return nil, err
	}
	var ri dynamic.ResourceInterface = b.dynamic.Resource(gv.WithResource(k.Resource))
	if k.Namespaced {
		ri = b.dynamic.Resource(gv.WithResource(k.Resource)).Namespace(ns)
	}
	narrow := func(o metav1.ListOptions) metav1.ListOptions {
		o.FieldSelector = sel.String()
		return o
	}
	return crdLW{&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			ul, err := ri.List(ctx, narrow(o))
			if err != nil {
				return nil, err
			}
			l := &objectList{ListMeta: metav1.ListMeta{ResourceVersion: ul.GetResourceVersion(), Continue: ul.GetContinue()}}
			l.SetGroupVersionKind(gv.WithKind(k.Name + "List"))
			for i := range ul.Items {
				if o, err := typed(k, &ul.Items[i]); err == nil {
					l.Items = append(l.Items, o)
				}
			}
			return l, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := ri.Watch(ctx, narrow(o))
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					return ev, true // Status objects (errors, 410 Gone) pass as they are
				}
				obj, err := typed(k, u)
				if err != nil {
					return ev, false
				}
				ev.Object = obj
				return ev, true
			}), nil
		},
	}}, nil
}

// crdLW tells the reflector to list, then watch: the conversion above wraps lists and
// watches, not streaming lists.
type crdLW struct{ *cache.ListWatch }

func (crdLW) IsWatchListSemanticsUnSupported() bool { return true }

// typed converts an unstructured object into kind k's Go type.
func typed(k objects.Kind, u *unstructured.Unstructured) (objects.Object, error) {
	obj := k.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", k.Name, u.GetName(), err)
	}
	obj.GetObjectKind().SetGroupVersionKind(objects.GVK(k))
	return obj, nil
}
