package cli

import (
	"strings"
	"testing"
)

func TestDeleteByName(t *testing.T) {
	c := newCluster(t)
	c.mustRun(clusterManifest, "apply", "-f", "-")
	before := c.count()

	r := c.mustRun("", "delete", "svc", "web", "headless")
	if r.out != "service \"web\" deleted\nservice \"headless\" deleted\n" {
		t.Fatalf("printed %q", r.out)
	}
	r = c.mustRun("", "delete", "pod", "db", "-n", "prod")
	if r.out != "pod \"db\" deleted\n" {
		t.Fatalf("printed %q", r.out)
	}
	// Cluster-scoped kinds ignore -n.
	c.mustRun("", "delete", "node", "node-2", "-n", "prod")
	if got := c.count(); got != before-4 {
		t.Fatalf("%d objects left, want %d", got, before-4)
	}

	// A missing object fails the command but does not stop the others.
	r = c.run("", "delete", "pods", "nope", "web")
	if r.runErr == nil || r.runErr.Error() != `pods "nope" not found` || r.out != "pod \"web\" deleted\n" {
		t.Fatalf("delete missing: %v %q", r.runErr, r.out)
	}
	r = c.run("", "delete", "pods", "nope", "--ignore-not-found")
	if r.runErr != nil || r.out != "" {
		t.Fatalf("--ignore-not-found: %v %q", r.runErr, r.out)
	}
	for _, args := range [][]string{{"delete"}, {"delete", "pods"}, {"delete", "gadgets", "x"}, {"delete", "pods", "x", "-f", "-"}} {
		if r := c.run("", args...); r.runErr == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

func TestDeleteFromFile(t *testing.T) {
	c := newCluster(t)
	file := writeFile(t, t.TempDir(), "web.yaml", webManifest)
	c.mustRun("", "apply", "-f", file)
	c.mustRun("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\n", "apply", "-f", "-")

	r := c.mustRun("", "delete", "-f", file)
	if r.out != "pod \"web\" deleted\nservice \"web\" deleted\n" {
		t.Fatalf("printed %q", r.out)
	}
	if c.count() != 1 {
		t.Fatalf("%d objects left, want only the ConfigMap", c.count())
	}
	r = c.run("", "delete", "-f", file)
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), `pods "web" not found`) || !strings.Contains(r.runErr.Error(), `services "web" not found`) {
		t.Fatalf("second delete: %v", r.runErr)
	}
	c.mustRun("", "delete", "-f", file, "--ignore-not-found")

	// A manifest that does not decode deletes nothing.
	r = c.run("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\n---\nkind: Nope\n", "delete", "-f", "-")
	if r.runErr == nil || c.count() != 1 {
		t.Fatalf("bad manifest: %v, %d objects left", r.runErr, c.count())
	}
}
