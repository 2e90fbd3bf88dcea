package deploy_test

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/fjord-net/fjord/deploy"
	"github.com/fjord-net/fjord/internal/cli"
	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
)

// objects decodes every document strictly, as the API server would refuse them.
func objects(t *testing.T) []runtime.Object {
	t.Helper()
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var out []runtime.Object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(deploy.Manifest), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		obj, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		out = append(out, obj)
	}
	return out
}

func TestManifestDecodesStrictly(t *testing.T) {
	kinds := map[string]int{}
	for _, o := range objects(t) {
		kinds[o.GetObjectKind().GroupVersionKind().Kind]++
	}
	for kind, n := range map[string]int{"DaemonSet": 2, "ClusterRole": 2, "ServiceAccount": 2, "IngressClass": 1, "ConfigMap": 2} {
		if kinds[kind] != n {
			t.Errorf("%d %s, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
}

// Every command line in the manifest must be one fjord accepts, with the image the
// manifest names, and the configuration files must parse.
func TestManifestCommandsAndConfigsAreFjords(t *testing.T) {
	for _, o := range objects(t) {
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			for _, c := range o.Spec.Template.Spec.Containers {
				if c.Image != deploy.Image || c.ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("%s: image %s (%s), want %s IfNotPresent", o.Name, c.Image, c.ImagePullPolicy, deploy.Image)
				}
				if c.Command[0] != "/usr/local/bin/fjord" {
					t.Errorf("%s runs %s, not the image's fjord", o.Name, c.Command[0])
				}
				root := cli.NewRoot(cli.Streams{In: &bytes.Buffer{}, Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
				sub, args, err := root.Find(c.Command[1:])
				if err != nil || sub == root {
					t.Fatalf("%s: fjord has no command %v: %v", o.Name, c.Command[1:], err)
				}
				if err := sub.ParseFlags(args); err != nil {
					t.Errorf("%s: %v", o.Name, err)
				}
				if sc := c.SecurityContext; sc == nil || sc.Privileged != nil && *sc.Privileged ||
					!slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s: must drop all capabilities and not be privileged", o.Name)
				}
			}
		case *corev1.ConfigMap:
			if conf, ok := o.Data["config.conf"]; ok {
				if _, err := proxyconfig.Parse([]byte(conf)); err != nil {
					t.Errorf("ConfigMap %s config.conf: %v", o.Name, err)
				}
			}
		}
	}
}
