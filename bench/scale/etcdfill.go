package main

// Writing Services, their EndpointSlices and their ClusterIPs' IPAddress objects
// straight into kube-apiserver's etcd, as kube-apiserver itself stores them
// (protobuf, under /registry): 90,000 objects in seconds, where creating them
// through the API takes kube-apiserver most of half an hour on this machine (each
// Service create allocates its ClusterIP through an IPAddress object, and gets slower
// as they grow: docs/benchmarks.md measured 538 s for 40,000 objects). kube-apiserver
// watches etcd, so its watch cache, and every informer, see them as if created
// through it. Nodes, Leases and the timed changes go through the API.

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// storedObject is one object as kube-apiserver keeps it in etcd.
type storedObject struct {
	key string
	obj runtime.Object
	gv  schema.GroupVersion
}

// stamp sets what kube-apiserver sets on create.
func stamp(m *metav1.ObjectMeta, now metav1.Time, managedBy, apiVersion string) {
	m.UID = types.UID(fmt.Sprintf("%08x-2222-4000-8000-%012x", now.Unix()&0xffffffff, fnv(m.Namespace+"/"+m.Name)))
	m.CreationTimestamp = now
	m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: managedBy, Operation: metav1.ManagedFieldsOperationUpdate,
		APIVersion: apiVersion, Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{}},"f:spec":{}}`)}}}
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h & 0xffffffffffff
}

// storedService is Service i with what the API server adds on create (IP families,
// policies) and its ClusterIP's IPAddress.
func storedService(i int, now metav1.Time) []storedObject {
	svc := service(i)
	stamp(&svc.ObjectMeta, now, "kubectl-client-side-apply", "v1")
	single := corev1.IPFamilyPolicySingleStack
	cluster := corev1.ServiceInternalTrafficPolicyCluster
	svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy, svc.Spec.InternalTrafficPolicy = []corev1.IPFamily{corev1.IPv4Protocol}, &single, &cluster
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	ip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: serviceIP(i).String(), Labels: map[string]string{
			networkingv1.LabelIPAddressFamily: string(corev1.IPv4Protocol), networkingv1.LabelManagedBy: "ipallocator.k8s.io"}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: namespace, Name: svc.Name}},
	}
	stamp(&ip.ObjectMeta, now, "kube-apiserver", "networking.k8s.io/v1")
	return []storedObject{
		{key: "/registry/services/specs/" + namespace + "/" + svc.Name, obj: svc, gv: corev1.SchemeGroupVersion},
		{key: "/registry/ipaddresses/" + ip.Name, obj: ip, gv: networkingv1.SchemeGroupVersion},
	}
}

func storedSlice(es *discoveryv1.EndpointSlice, now metav1.Time) storedObject {
	stamp(&es.ObjectMeta, now, "kube-controller-manager", "discovery.k8s.io/v1")
	es.Generation = 1
	return storedObject{key: "/registry/endpointslices/" + es.Namespace + "/" + es.Name, obj: es, gv: discoveryv1.SchemeGroupVersion}
}

// putAll writes objects into etcd, one put each from -create-workers goroutines:
// every object must get a revision of its own, as through the API (objects written in
// one transaction share a resourceVersion, and watchers then lose some of them).
func (b *bench) putAll(ctx context.Context, what string, objs []storedObject) error {
	ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	t0 := time.Now()
	err := b.parallel(ctx, what, len(objs), func(ctx context.Context, i int) error {
		o := objs[i]
		data, err := runtime.Encode(scheme.Codecs.EncoderForVersion(ser, o.gv), o.obj)
		if err != nil {
			return fmt.Errorf("encode %s: %w", o.key, err)
		}
		_, err = b.cp.Etcd().Put(ctx, o.key, string(data))
		return err
	})
	if err == nil {
		b.logf("%d %s written into etcd in %.1f s", len(objs), what, time.Since(t0).Seconds())
	}
	return err
}
