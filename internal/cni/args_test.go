package cni

import "testing"

func TestPodOf(t *testing.T) {
	for _, tc := range []struct {
		args, want string
		bad        bool
	}{
		{"", "", false},
		{"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-7c9f-abcde;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u", "default/web-7c9f-abcde", false},
		{"K8S_POD_NAME=p;K8S_POD_NAMESPACE=kube-system", "kube-system/p", false},
		{"IgnoreUnknown=1", "", false},
		{"K8S_POD_NAMESPACE=default", "", true}, // a name is required with a namespace
		{"K8S_POD_NAMESPACE=Bad_NS;K8S_POD_NAME=p", "", true},
		{"K8S_POD_NAMESPACE=default;K8S_POD_NAME=../etc", "", true},
		{"K8S_POD_NAMESPACE", "", true},
	} {
		got, err := podOf(tc.args)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("podOf(%q) = %q, %v; want %q, error %v", tc.args, got, err, tc.want, tc.bad)
		}
	}
}
