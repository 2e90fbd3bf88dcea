package objects

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDecodeGood(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		kinds []string // Kind of each decoded object, in order
	}{
		{"single pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: nginx}]\n", []string{"Pod"}},
		{"multi doc with empty and comment-only documents", "---\n# just a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---   # trailing comment\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n...\n", []string{"ConfigMap", "Secret"}},
		{"json object", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}`, []string{"Node"}},
		{"json stream", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}} {"apiVersion":"v1","kind":"Node","metadata":{"name":"n2"}}`, []string{"Node", "Node"}},
		{"list", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: b}, addressType: IPv4}\n", []string{"ConfigMap", "EndpointSlice"}},
		{"typed list", `{"apiVersion":"v1","kind":"ServiceList","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":80}]}}]}`, []string{"Service"}},
		{"ingress", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n", []string{"Ingress"}},
		{"lease and ingressclass", "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: n1, namespace: kube-node-lease}\n---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: fjord}\nspec: {controller: fjord.dev/ingress}\n", []string{"Lease", "IngressClass"}},
		{"windows line endings", "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: b\r\n", []string{"ConfigMap", "ConfigMap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode(strings.NewReader(tt.in), "in.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetObjectKind().GroupVersionKind().Kind)
			}
			if strings.Join(got, ",") != strings.Join(tt.kinds, ",") {
				t.Fatalf("kinds %v, want %v", got, tt.kinds)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, each must appear
	}{
		{"unknown field with path", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  contaners: []\n",
			[]string{`pods.yaml: document 2 (Pod default/web): unknown field "spec.contaners"`}},
		{"unknown field inside a list", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: prod}\nspec:\n  containers:\n  - {name: a, image: x}\n  - {name: b, imag: x}\n",
			[]string{`(Pod prod/web): unknown field "spec.containers[1].imag"`}},
		{"several unknown fields reported together", "apiVersion: v1\nkind: Service\nmetadata: {name: s, foo: 1}\nspec: {bar: 2}\n",
			[]string{`unknown field "metadata.foo"`, `unknown field "spec.bar"`}},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  k: v\n  k: w\n", []string{`document 1`, `key "k" already set`}},
		{"wrong type with list index", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - {name: a, port: 80}\n  - {name: b, port: \"http\"}\n",
			[]string{`(Service default/s): spec.ports[1].port: Invalid value: "http": expected an integer, got a string`}},
		{"wrong type in a map", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {app: 1}\n", []string{`metadata.labels[app]: Invalid value: 1: expected a string, got a number`}},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", []string{"document 1: kind is required"}},
		{"missing apiVersion", "kind: Pod\nmetadata: {name: a}\n", []string{`apiVersion is required (Pod is "v1")`}},
		{"wrong apiVersion", "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: a}\n", []string{`(Ingress default/a): apiVersion "extensions/v1beta1" is not served for Ingress; use "networking.k8s.io/v1"`}},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n", []string{`kind "Deployment" (apps/v1) is not a kind fjord stores (known: Node, Pod`}},
		{"kube-proxy config", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n", []string{"is a configuration file for 'fjord agent --config', not an object"}},
		{"cluster-scoped with namespace", "apiVersion: v1\nkind: Node\nmetadata: {name: n1, namespace: default}\n", []string{`(Node default/n1): metadata.namespace: Forbidden: Node is cluster-scoped`}},
		{"yaml syntax error names the file line", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\n  metadata: x\n", []string{"document 2", "line 7"}},
		{"not an object", "- a\n- b\n", []string{"document 1: expected an object with apiVersion and kind, got an array"}},
		{"list item errors are numbered", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}, dat: {}}\n", []string{`document 1, item 2 (ConfigMap default/b): unknown field "dat"`}},
		{"nested lists", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"List","items":[]}]}`, []string{"may not contain another list"}},
		{"every bad document is reported", "apiVersion: v1\nkind: Nope\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {x: 1}\n", []string{"document 1", `kind "Nope"`, `document 2 (Pod default/p): unknown field "spec.x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in), "pods.yaml")
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestDecodeKeepsGoodObjectsBesideBadOnes(t *testing.T) {
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\nbad: 1\n"
	objs, err := Decode(strings.NewReader(in), "x")
	if err == nil || len(objs) != 1 || objs[0].GetName() != "a" {
		t.Fatalf("objs %v err %v", objs, err)
	}
}

func TestDecodeDefaults(t *testing.T) {
	in := `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  sessionAffinity: ClientIP
  ports: [{port: 80}]
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: prod}
stringData: {password: hunter2}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e}
addressType: IPv4
ports: [{port: 8080}]
`
	objs, err := Decode(strings.NewReader(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	svc := objs[0].(*corev1.Service)
	if svc.Namespace != "default" || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP || svc.Spec.Ports[0].TargetPort != intstr.FromInt32(80) ||
		svc.Spec.ExternalTrafficPolicy != "Cluster" || *svc.Spec.InternalTrafficPolicy != "Cluster" ||
		*svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 {
		t.Errorf("service not defaulted: %+v", svc.Spec)
	}
	sec := objs[1].(*corev1.Secret)
	if sec.Namespace != "prod" || sec.Type != corev1.SecretTypeOpaque || string(sec.Data["password"]) != "hunter2" || sec.StringData != nil {
		t.Errorf("secret not defaulted: %+v", sec)
	}
	es := objs[2].(*discoveryv1.EndpointSlice)
	if *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("endpointslice port protocol not defaulted")
	}
	for _, o := range objs {
		if err := Validate(o); err != nil {
			t.Errorf("defaulted object does not validate: %v", err)
		}
	}
}

func TestSeedFixtures(t *testing.T) {
	f, err := os.Open("testdata/nginx-configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := Decode(f, "nginx-configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm, ok := objs[0].(*corev1.ConfigMap)
	if len(objs) != 1 || !ok {
		t.Fatalf("got %v", objs)
	}
	if err := Validate(cm); err != nil {
		t.Fatal(err)
	}
	if cm.Namespace != "ingress-nginx" || cm.Data["keep-alive"] != "75" || !strings.HasPrefix(cm.Data["log-format-upstream"], `$remote_addr - $remote_user [$time_local] "$request"`) ||
		!strings.HasSuffix(cm.Data["log-format-upstream"], "$upstream_status $req_id") || cm.Labels["app.kubernetes.io/name"] != "ingress-nginx" {
		t.Errorf("configmap changed in decoding: %+v", cm)
	}

	kp, err := os.Open("testdata/kube-proxy-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	_, err = Decode(kp, "kube-proxy-config.yaml")
	if err == nil || !strings.Contains(err.Error(), "kube-proxy-config.yaml: document 1: KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) is a configuration file for 'fjord agent --config', not an object to apply") {
		t.Fatalf("kube-proxy config: %v", err)
	}
}
