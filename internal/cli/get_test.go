package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fjord-net/fjord/internal/objects"
)

const clusterManifest = webManifest + `---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec:
  containers: [{name: db, image: postgres}]
status: {phase: Running, podIP: 10.244.2.7}
---
apiVersion: v1
kind: Service
metadata: {name: edge}
spec:
  type: NodePort
  ports: [{name: http, port: 80, nodePort: 30080}, {name: dns, port: 53, protocol: UDP}]
  externalIPs: [198.18.0.100]
  selector: {app: edge}
` + `---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, selector: {app: web}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.244.1.5]
- addresses: [10.244.1.6]
- addresses: [10.244.2.5]
- addresses: [10.244.2.6]
ports: [{name: http, port: 80}, {name: https, port: 443}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  ingressClassName: fjord
  tls: [{hosts: [example.com], secretName: site-tls}]
  rules:
  - host: example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
---
apiVersion: v1
kind: Secret
metadata: {name: site-tls}
type: kubernetes.io/tls
stringData: {tls.crt: c, tls.key: k}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1", b: "2"}
binaryData: {c: AA==}
---
apiVersion: v1
kind: Node
metadata:
  name: node-1
  annotations: {fjord.dev/backend: vxlan, fjord.dev/vtep-mac: "02:42:c6:12:00:02"}
spec: {podCIDR: 10.244.1.0/24}
status: {addresses: [{type: InternalIP, address: 198.18.0.2}]}
---
apiVersion: v1
kind: Node
metadata: {name: node-2}
spec: {podCIDR: 10.244.2.0/24}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: node-1, namespace: kube-node-lease}
spec: {holderIdentity: node-1}
`

func TestGetTables(t *testing.T) {
	c := newCluster(t)
	c.mustRun(clusterManifest, "apply", "-f", "-")
	created := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	c.setCreated(created)
	now := created.Add(3*time.Minute + 10*time.Second)

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pods"}, `
NAME   STATUS    IP       NODE     AGE
web    Pending   <none>   node-1   3m10s
`},
		{[]string{"po", "-A", "-o", "wide"}, `
NAMESPACE   NAME   STATUS    IP           NODE     AGE     LABELS
default     web    Pending   <none>       node-1   3m10s   app=web
prod        db     Running   10.244.2.7   <none>   3m10s   app=db
`},
		{[]string{"services"}, `
NAME       TYPE        CLUSTER-IP   PORTS                       AGE
edge       NodePort    10.96.0.2    80:30080/TCP,53:30000/UDP   3m10s
headless   ClusterIP   None         <none>                      3m10s
web        ClusterIP   10.96.0.20   80/TCP,443/TCP              3m10s
`},
		{[]string{"svc", "edge", "-o", "wide"}, `
NAME   TYPE       CLUSTER-IP   PORTS                       AGE     EXTERNAL-IP    SELECTOR
edge   NodePort   10.96.0.2    80:30080/TCP,53:30000/UDP   3m10s   198.18.0.100   app=edge
`},
		{[]string{"endpointslices"}, `
NAME      ADDRESSTYPE   PORTS    ENDPOINTS                                      AGE
web-abc   IPv4          80,443   10.244.1.5,10.244.1.6,10.244.2.5 + 1 more...   3m10s
`},
		{[]string{"ingress"}, `
NAME   CLASS   HOSTS           PORTS     AGE
site   fjord   example.com,*   80, 443   3m10s
`},
		{[]string{"configmaps"}, `
NAME       DATA   AGE
settings   3      3m10s
`},
		{[]string{"secrets"}, `
NAME       TYPE                DATA   AGE
site-tls   kubernetes.io/tls   2      3m10s
`},
		{[]string{"nodes"}, `
NAME     STATUS     POD-CIDR        INTERNAL-IP   AGE
node-1   Ready      10.244.1.0/24   198.18.0.2    3m10s
node-2   NotReady   10.244.2.0/24   <none>        3m10s
`},
		{[]string{"no", "-o", "wide"}, `
NAME     STATUS     POD-CIDR        INTERNAL-IP   AGE     MODE     VTEP-MAC
node-1   Ready      10.244.1.0/24   198.18.0.2    3m10s   vxlan    02:42:c6:12:00:02
node-2   NotReady   10.244.2.0/24   <none>        3m10s   <none>   <none>
`},
		{[]string{"leases", "-n", "kube-node-lease"}, `
NAME     HOLDER   AGE
node-1   node-1   3m10s
`},
		{[]string{"pods", "-A", "-l", "app in (db,cache)"}, `
NAMESPACE   NAME   STATUS    IP           NODE     AGE
prod        db     Running   10.244.2.7   <none>   3m10s
`},
		{[]string{"pods", "-n", "prod", "-o", "name"}, `
pod/db
`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := c.get(now, tt.args...)
			if r.runErr != nil {
				t.Fatalf("%v\n%s", r.runErr, r.err)
			}
			if want := strings.TrimPrefix(tt.want, "\n"); r.out != want {
				t.Errorf("got:\n%s\nwant:\n%s", r.out, want)
			}
		})
	}
}

func TestGetErrorsAndEmptyListings(t *testing.T) {
	c := newCluster(t)
	c.mustRun(webManifest, "apply", "-f", "-")
	now := time.Now()

	r := c.get(now, "deployments")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), `unknown kind "deployments" (known: bgpconfigurations, bgppeers, configmaps, endpointslices, ingressclasses, ingresses, leases, nodes, pods, secrets, services)`) {
		t.Errorf("unknown kind: %v", r.runErr)
	}
	r = c.get(now, "pods", "web", "nope")
	if r.runErr == nil || r.runErr.Error() != `pods "nope" not found` || !strings.Contains(r.out, "web") {
		t.Errorf("missing name: %v\n%s", r.runErr, r.out)
	}
	r = c.get(now, "pods", "-n", "empty")
	if r.runErr != nil || r.out != "" || r.err != "No resources found in empty namespace.\n" {
		t.Errorf("empty namespace: %v %q %q", r.runErr, r.out, r.err)
	}
	r = c.get(now, "ingressclasses")
	if r.runErr != nil || r.err != "No resources found\n" {
		t.Errorf("empty cluster-scoped kind: %v %q", r.runErr, r.err)
	}
	r = c.get(now, "pods", "-l", "app=(")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), "--selector") {
		t.Errorf("bad selector: %v", r.runErr)
	}
	r = c.get(now, "pods", "-o", "xml")
	if r.runErr == nil {
		t.Error("bad output format accepted")
	}
	// Through the real command tree, a missing object fails the command.
	if r := c.run("", "get", "svc", "nope"); r.runErr == nil {
		t.Error("fjord get svc nope succeeded")
	}
}

// What -o json and -o yaml print decodes back to the stored objects, so that
// `fjord get -o yaml | fjord apply -f -` works.
func TestGetOutputRoundTrips(t *testing.T) {
	c := newCluster(t)
	c.mustRun(clusterManifest, "apply", "-f", "-")
	ctx := context.Background()
	svcKind, _ := objects.Kinds().ByName("Service")
	stored, _, err := c.store.List(ctx, svcKind, "default")
	if err != nil {
		t.Fatal(err)
	}

	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			r := c.get(time.Now(), "services", "-o", format)
			if r.runErr != nil {
				t.Fatal(r.runErr)
			}
			got, err := objects.Decode(strings.NewReader(r.out), format)
			if err != nil {
				t.Fatalf("%v\n%s", err, r.out)
			}
			if !reflect.DeepEqual(got, stored) {
				t.Errorf("round trip changed the objects:\n%s", r.out)
			}
			if !strings.Contains(r.out, "List") || !strings.Contains(r.out, `resourceVersion`) {
				t.Errorf("not a List with resourceVersion:\n%s", r.out)
			}

			// One name: the bare object, with its resourceVersion.
			r = c.get(time.Now(), "service", "web", "-o", format)
			one, err := objects.Decode(strings.NewReader(r.out), format)
			if err != nil || len(one) != 1 {
				t.Fatalf("%v\n%s", err, r.out)
			}
			if strings.Contains(r.out, "List") || one[0].GetResourceVersion() == "" || one[0].GetUID() == "" {
				t.Errorf("single object output:\n%s", r.out)
			}
			// Re-applying what get printed changes nothing.
			ar := c.mustRun(r.out, "apply", "-f", "-")
			if ar.out != "service/web unchanged\n" {
				t.Errorf("re-apply printed %q", ar.out)
			}
		})
	}

	var l map[string]any
	r := c.get(time.Now(), "pods", "-n", "nowhere", "-o", "json")
	if err := json.Unmarshal([]byte(r.out), &l); err != nil || l["kind"] != "List" || len(l["items"].([]any)) != 0 {
		t.Errorf("empty json list: %v %s", err, r.out)
	}
}
