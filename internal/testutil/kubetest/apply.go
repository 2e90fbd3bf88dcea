package kubetest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"

	"github.com/fjord-net/fjord/deploy"
)

// Apply creates or updates objects as the admin with server-side apply (fields the
// test stops setting are removed, fields others set are kept), and their status too
// when they carry one (a Node's addresses, a Pod's podIP): what the kubelet and the
// controllers write. It fails the test on any error.
func (c *Cluster) Apply(objs ...runtime.Object) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, o := range objs {
		u, ri, err := c.unstructured(o)
		if err != nil {
			c.t.Fatalf("kubetest: apply: %v", err)
		}
		opts := metav1.ApplyOptions{FieldManager: "kubetest", Force: true}
		if _, err := ri.Apply(ctx, u.GetName(), u, opts); err != nil {
			c.t.Fatalf("kubetest: apply %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		if st, ok := u.Object["status"]; ok && !empty(st) {
			if _, err := ri.ApplyStatus(ctx, u.GetName(), u, opts); err != nil {
				c.t.Fatalf("kubetest: apply status of %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
		}
	}
}

// Delete deletes objects (those already gone are fine).
func (c *Cluster) Delete(objs ...runtime.Object) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, o := range objs {
		u, ri, err := c.unstructured(o)
		if err != nil {
			c.t.Fatalf("kubetest: delete: %v", err)
		}
		if err := ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			c.t.Fatalf("kubetest: delete %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
}

// unstructured turns a typed object into what the dynamic client sends, without the
// server-owned metadata, and finds its resource.
func (c *Cluster) unstructured(o runtime.Object) (*unstructured.Unstructured, dynamic.ResourceInterface, error) {
	gvk := o.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		kinds, _, err := scheme.Scheme.ObjectKinds(o)
		if err != nil {
			return nil, nil, err
		}
		gvk = kinds[0]
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	c.mu.Lock()
	if c.dynamic == nil {
		if c.dynamic, err = dynamic.NewForConfig(c.RESTConfig(Admin)); err != nil {
			c.mu.Unlock()
			return nil, nil, err
		}
		c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	}
	dyn, mapper := c.dynamic, c.mapper
	c.mu.Unlock()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
			u.SetNamespace(ns)
		}
		return u, dyn.Resource(mapping.Resource).Namespace(ns), nil
	}
	return u, dyn.Resource(mapping.Resource), nil
}

// empty reports whether a decoded JSON value holds nothing but empty maps and lists.
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, e := range v {
			if !empty(e) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	default:
		return false
	}
}

// GrantFjordRoles applies deploy/fjord.yaml's namespaces and least-privilege roles and
// binds AgentUser and IngressUser to whatever the manifest binds fjord's agent and
// ingress ServiceAccounts to, as the Kubernetes lab does: clients of these users have
// exactly the permissions fjord has in a cluster.
func (c *Cluster) GrantFjordRoles() {
	c.t.Helper()
	saUser := map[string]string{"fjord-agent": AgentUser, "fjord-ingress": IngressUser}
	dec := scheme.Codecs.UniversalDeserializer()
	comment := regexp.MustCompile(`(?m)^#.*$`)
	var objs []runtime.Object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(deploy.Manifest), -1) {
		if strings.TrimSpace(comment.ReplaceAllString(doc, "")) == "" {
			continue
		}
		o, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			c.t.Fatalf("kubetest: deploy/fjord.yaml document %d: %v", i, err)
		}
		switch o := o.(type) {
		case *rbacv1.ClusterRoleBinding:
			objs = append(objs, o)
			if b := bindUsers(o.ObjectMeta, o.Subjects, saUser); b != nil {
				objs = append(objs, &rbacv1.ClusterRoleBinding{ObjectMeta: *b, RoleRef: o.RoleRef, Subjects: usersOf(o.Subjects, saUser)})
			}
		case *rbacv1.RoleBinding:
			objs = append(objs, o)
			if b := bindUsers(o.ObjectMeta, o.Subjects, saUser); b != nil {
				objs = append(objs, &rbacv1.RoleBinding{ObjectMeta: *b, RoleRef: o.RoleRef, Subjects: usersOf(o.Subjects, saUser)})
			}
		default:
			switch o.GetObjectKind().GroupVersionKind().Kind {
			case "Namespace", "ClusterRole", "Role", "ServiceAccount":
				objs = append(objs, o)
			}
		}
	}
	// Namespaces first: the namespaced objects need them.
	var first, rest []runtime.Object
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind == "Namespace" {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	c.Apply(append(first, rest...)...)
}

// bindUsers returns the metadata of a copy of a binding for the users that stand for
// its ServiceAccount subjects, or nil if it binds none of them.
func bindUsers(m metav1.ObjectMeta, subjects []rbacv1.Subject, saUser map[string]string) *metav1.ObjectMeta {
	if len(usersOf(subjects, saUser)) == 0 {
		return nil
	}
	return &metav1.ObjectMeta{Name: m.Name + "-kubetest", Namespace: m.Namespace}
}

func usersOf(subjects []rbacv1.Subject, saUser map[string]string) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, s := range subjects {
		if u, ok := saUser[s.Name]; ok && s.Kind == rbacv1.ServiceAccountKind {
			out = append(out, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u})
		}
	}
	return out
}
