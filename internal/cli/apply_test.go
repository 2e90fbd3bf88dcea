package cli

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const webManifest = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: node-1
  containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, targetPort: 80}, {name: https, port: 443}]
`

func TestApplyCreatesThenReportsUnchangedAndConfigured(t *testing.T) {
	c := newCluster(t)
	file := writeFile(t, t.TempDir(), "web.yaml", webManifest)

	r := c.mustRun("", "apply", "-f", file)
	if r.out != "pod/web created\nservice/web created\n" {
		t.Fatalf("first apply printed %q", r.out)
	}
	r = c.mustRun("", "apply", "-f", file)
	if r.out != "pod/web unchanged\nservice/web unchanged\n" {
		t.Fatalf("second apply printed %q", r.out)
	}
	changed := strings.Replace(webManifest, "labels: {app: web}", "labels: {app: web, tier: front}", 1)
	r = c.mustRun(changed, "apply", "-f", "-")
	if r.out != "pod/web configured\nservice/web unchanged\n" {
		t.Fatalf("apply from stdin printed %q", r.out)
	}
}

func TestApplyWithOneInvalidDocumentWritesNothing(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	bad := webManifest + `---
apiVersion: v1
kind: ConfigMap
metadata: {name: ok}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  ports: [{name: a, port: 80}, {name: b, port: 70000}]
`
	file := writeFile(t, dir, "all.yaml", bad)
	r := c.run("", "apply", "-f", file)
	if r.runErr == nil {
		t.Fatal("apply of an invalid document succeeded")
	}
	want := file + ": Service default/api: spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
	if !strings.Contains(r.err, want) {
		t.Fatalf("stderr %q does not contain %q", r.err, want)
	}
	if !strings.Contains(r.runErr.Error(), "nothing was changed") {
		t.Fatalf("error %v", r.runErr)
	}
	if n := c.count(); n != 0 {
		t.Fatalf("%d objects were written", n)
	}
}

func TestApplyReportsEveryProblemInEveryFile(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  contaners: []\n")
	writeFile(t, dir, "sub/b.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}`)
	writeFile(t, dir, "sub/c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n")
	writeFile(t, dir, "sub/d.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n")
	writeFile(t, dir, "sub/notes.txt", "not a manifest")
	r := c.run("", "apply", "-R", "-f", dir)
	if r.runErr == nil || r.runErr.Error() != "3 problems in the input; nothing was changed" {
		t.Fatalf("error %v\nstderr:\n%s", r.runErr, r.err)
	}
	for _, w := range []string{
		dir + `/a.yaml: document 1 (Pod default/web): unknown field "spec.contaners"`,
		dir + `/sub/b.json: ConfigMap default/Bad_Name: metadata.name: Invalid value: "Bad_Name"`,
		dir + `/sub/d.yml: ConfigMap default/dup is also defined in ` + dir + `/sub/c.yaml`,
	} {
		if !strings.Contains(r.err, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, r.err)
		}
	}
	if c.count() != 0 {
		t.Fatal("objects were written")
	}
	// Without -R only the top directory is read.
	r = c.run("", "apply", "-f", dir+"/sub")
	if r.runErr == nil || !strings.Contains(r.err, "Bad_Name") {
		t.Fatalf("apply -f dir: %v %s", r.runErr, r.err)
	}
}

func TestApplyKubeProxyConfigurationExplainsItself(t *testing.T) {
	c := newCluster(t)
	r := c.run("", "apply", "-f", "../objects/testdata/kube-proxy-config.yaml")
	if r.runErr == nil || !strings.Contains(r.err, "is a configuration file for 'fjord agent --config', not an object to apply") {
		t.Fatalf("%v\n%s", r.runErr, r.err)
	}
}

func TestSeedNginxConfigMapAppliesVerbatim(t *testing.T) {
	c := newCluster(t)
	r := c.mustRun("", "apply", "-f", "../objects/testdata/nginx-configuration.yaml")
	if r.out != "configmap/nginx-configuration created\n" {
		t.Fatalf("apply printed %q", r.out)
	}
	r = c.run("", "get", "configmaps", "-n", "ingress-nginx")
	if r.runErr != nil || !strings.HasPrefix(r.out, "NAME                  DATA   AGE\nnginx-configuration   5      ") {
		t.Fatalf("get: %v\n%s", r.runErr, r.out)
	}
	// What is stored is what the seed says, byte for byte in every value.
	r = c.mustRun("", "get", "configmap", "nginx-configuration", "-n", "ingress-nginx", "-o", "json")
	var stored corev1.ConfigMap
	if err := json.Unmarshal([]byte(r.out), &stored); err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile("../objects/testdata/nginx-configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want corev1.ConfigMap
	if err := yaml.UnmarshalStrict(seed, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Data, want.Data) || !reflect.DeepEqual(stored.Labels, want.Labels) || len(stored.Data) != 5 {
		t.Errorf("stored data %q\nlabels %v\nwant %q %v", stored.Data, stored.Labels, want.Data, want.Labels)
	}
}

// TestApplyMaxTxnOps: --max-txn-ops refuses an apply that needs a bigger
// transaction, names the limit, and writes nothing.
func TestApplyMaxTxnOps(t *testing.T) {
	c := newCluster(t)
	var b strings.Builder
	for i := range 4 {
		b.WriteString("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-" + string(rune('a'+i)) + "}\n")
	}
	r := c.run(b.String(), "apply", "--max-txn-ops", "3", "-f", "-")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), "--max-txn-ops 3") || !strings.Contains(r.runErr.Error(), "nothing was written") {
		t.Fatalf("4 objects with --max-txn-ops 3: %v", r.runErr)
	}
	if g := c.mustRun("", "get", "configmaps"); strings.Contains(g.out, "cm-") {
		t.Fatalf("a refused apply wrote objects:\n%s", g.out)
	}
	c.mustRun(b.String(), "apply", "--max-txn-ops", "4", "-f", "-")
	if r := c.run("", "apply", "--max-txn-ops", "-1", "-f", "-"); r.runErr == nil || !strings.Contains(r.runErr.Error(), "--max-txn-ops -1") {
		t.Errorf("a negative limit: %v", r.runErr)
	}
}
