package deploy_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/fjord-net/fjord/deploy"
	fjobjects "github.com/fjord-net/fjord/internal/objects"
)

// The CRDs' schemas list exactly the JSON fields of fjord's Go types, so the API
// server neither prunes a field the agent reads nor accepts one it ignores.
func TestBGPCRDsMatchTheGoTypes(t *testing.T) {
	types := map[string]reflect.Type{
		"BGPConfiguration": reflect.TypeOf(fjobjects.BGPConfigurationSpec{}),
		"BGPPeer":          reflect.TypeOf(fjobjects.BGPPeerSpec{}),
	}
	kinds := map[string]int{}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(deploy.BGPManifest), -1) {
		var o map[string]any
		if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		kind, _ := o["kind"].(string)
		kinds[kind]++
		if kind != "CustomResourceDefinition" {
			continue
		}
		spec := o["spec"].(map[string]any)
		names := spec["names"].(map[string]any)
		k, _ := fjobjects.Kinds().ByName(names["kind"].(string))
		if k.APIVersion != spec["group"].(string)+"/v1" || names["plural"] != k.Resource || spec["scope"] != "Cluster" {
			t.Errorf("CRD %v does not match kind %+v", names, k)
		}
		v := spec["versions"].([]any)[0].(map[string]any)
		props := v["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)["properties"].(map[string]any)["spec"].(map[string]any)["properties"].(map[string]any)
		var got []string
		for f := range props {
			got = append(got, f)
		}
		var want []string
		tt := types[names["kind"].(string)]
		for i := 0; i < tt.NumField(); i++ {
			want = append(want, strings.Split(tt.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema fields %v, Go fields %v", names["kind"], got, want)
		}
	}
	if kinds["CustomResourceDefinition"] != 2 || kinds["ClusterRole"] != 1 || kinds["ClusterRoleBinding"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
}
