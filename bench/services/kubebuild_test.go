package main

import (
	"slices"
	"testing"
)

func TestStagingReplaces(t *testing.T) {
	gomod := []byte(`module k8s.io/kubernetes

require (
	k8s.io/api v0.0.0
	k8s.io/client-go v0.0.0
	k8s.io/klog/v2 v2.130.1
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	k8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
)
`)
	got := stagingReplaces(gomod, "v0.37.2")
	want := []string{"replace k8s.io/api => k8s.io/api v0.37.2", "replace k8s.io/client-go => k8s.io/client-go v0.37.2"}
	if !slices.Equal(got, want) {
		t.Errorf("stagingReplaces = %q, want %q (sample-controller is replaced but not required)", got, want)
	}
	if v, err := stagingVersion("v1.37.2"); err != nil || v != "v0.37.2" {
		t.Errorf("stagingVersion(v1.37.2) = %q, %v", v, err)
	}
	if _, err := stagingVersion("1.37"); err == nil {
		t.Error("stagingVersion(1.37) must fail")
	}
}
