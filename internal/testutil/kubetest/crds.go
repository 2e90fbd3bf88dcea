package kubetest

import (
	"context"
	"regexp"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/fjord-net/fjord/deploy"
)

// InstallFjordCRDs applies deploy/fjord-bgp-crds.yaml (the BGP objects' CRDs and the
// agent's right to read them, bound to AgentUser as GrantFjordRoles binds the rest)
// and waits until the API server serves the new kinds.
func (c *Cluster) InstallFjordCRDs() {
	c.t.Helper()
	saUser := map[string]string{"fjord-agent": AgentUser, "fjord-ingress": IngressUser}
	var crds []string
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(deploy.BGPManifest), -1) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil || m == nil {
			c.t.Fatalf("kubetest: deploy/fjord-bgp-crds.yaml document %d: %v", i, err)
		}
		u := &unstructured.Unstructured{Object: m}
		switch u.GetKind() {
		case "CustomResourceDefinition":
			crds = append(crds, u.GetName())
			c.Apply(u)
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &b); err != nil {
				c.t.Fatal(err)
			}
			c.Apply(u)
			if meta := bindUsers(b.ObjectMeta, b.Subjects, saUser); meta != nil {
				c.Apply(&rbacv1.ClusterRoleBinding{ObjectMeta: *meta, RoleRef: b.RoleRef, Subjects: usersOf(b.Subjects, saUser)})
			}
		default:
			c.Apply(u)
		}
	}
	crdRes := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, name := range crds {
		established := false
		for deadline := time.Now().Add(30 * time.Second); !established && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			u, err := c.dynamic.Resource(crdRes).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				established = established || m["type"] == "Established" && strings.EqualFold(m["status"].(string), "true")
			}
		}
		if !established {
			c.t.Fatalf("kubetest: CRD %s never became Established", name)
		}
	}
	c.mu.Lock()
	c.mapper.Reset() // discover the new kinds before anything applies one
	c.mu.Unlock()
}
